"""Where the tests find the shipped data and the paper's reference model (in ../shared, beside the clone)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data" / "BallPlay-M"
REFERENCE = ROOT.parent / "shared" / "reference" / "mocap_humanoid.xml"
