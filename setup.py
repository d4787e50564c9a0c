"""Package layout: the three layers live in top-level folders but import as one namespace.

spec/ -> polytask.spec, compiler/ -> polytask.compiler, runtime/ -> polytask.runtime,
polytask/ -> polytask (version, CLI). Metadata lives in pyproject.toml; this file only
maps folders to packages, which pyproject.toml cannot do for nested packages on its own.
"""
from setuptools import find_packages, setup

LAYERS = {
    "polytask": "polytask",
    "polytask.spec": "spec",
    "polytask.compiler": "compiler",
    "polytask.runtime": "runtime",
}

packages, package_dir = [], {}
for package, folder in LAYERS.items():
    package_dir[package] = folder
    packages.append(package)
    for sub in find_packages(folder):
        packages.append(f"{package}.{sub}")
        package_dir[f"{package}.{sub}"] = f"{folder}/{sub.replace('.', '/')}"

setup(packages=packages, package_dir=package_dir, package_data={"polytask.spec": ["*.json"]})
