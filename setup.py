# Only the compiled extension lives here; all metadata is in pyproject.toml.
from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension("kbuilder.elf._tables", ["kbuilder/elf/_tables.pyx"]),
            Extension("kbuilder.compare._fastcmp", ["kbuilder/compare/_fastcmp.pyx"]),
        ],
        compiler_directives={"language_level": "3", "boundscheck": False, "wraparound": False},
    ),
)
