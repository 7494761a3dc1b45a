from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="skillmimic",
    version="0.1.0",
    description="A simulated humanoid learns basketball skills from human demonstrations (SkillMimic on MuJoCo)",
    long_description=Path(__file__).with_name("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["skillmimic", "skillmimic.*"]),
    package_data={"skillmimic": ["assets/*.xml", "assets/*.pt"]},  # the models and the shipped policies
    install_requires=[
        "torch>=2.4",
        "numpy>=1.24",
        "mujoco>=4.0,<5",
        "mujoco-warp>=4.0,<5",
        "warp-lang>=1.19",
        "pyyaml>=6.0",
        "tensorboard>=2.14",
        "tyro>=0.9",
        "pillow>=9.0",
        "imageio>=2.31",
        "imageio-ffmpeg>=0.5",
    ],
    extras_require={"test": ["pytest>=8"]},
    license="Apache-2.0",
)
