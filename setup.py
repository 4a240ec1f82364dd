"""Installs mtmi_tfrs and its pinned stack."""

import setuptools

setuptools.setup(
  name="mtmi-tfrs",
  version="0.1.0",
  description="Multi-tower multi-interest (MTMI) retrieval for TensorFlow Recommenders",
  long_description=open("README.md", encoding="utf-8").read(),
  long_description_content_type="text/markdown",
  license="Apache-2.0",
  packages=setuptools.find_packages(include=["mtmi_tfrs", "mtmi_tfrs.*"]),
  python_requires=">=3.11,<3.12",
  install_requires=[
    # ScaNN 1.4.2's TensorFlow ops are compiled against TF 2.20: move them together.
    "tensorflow==2.20.*",
    "tf-keras==2.20.*",
    "tensorflow-recommenders==0.7.7",
    "scann==1.4.2",
    "numpy",
    "pandas",
    "absl-py",
    "matplotlib",
    "pyyaml",
  ],
  extras_require={
    "test": ["pytest", "ruff", "pyarrow", "nbformat"],
  },
  entry_points={"console_scripts": ["mtmi-tfrs=mtmi_tfrs.cli:run"]},
)
