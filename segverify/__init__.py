"""segverify: prove that a municipal network obeys the three-tier separation model (三層の対策)."""

__version__ = "0.1.0"
