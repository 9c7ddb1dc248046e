"""`medhub.data`: `datasets` loaders for medical data (named datasets, local layouts, Hub repos), a lazily
decoded DICOM column, patient-level splitting with a leakage check, and sharing (`push_dataset`: the de-identification
check, then the data and their dataset card). See `loaders.load`."""

from .chestxray14 import LABELS as CHESTXRAY14_LABELS
from .dicom_feature import DICOM_STRUCT, decode_dicom, decode_dicom_columns, dicom_value
from .loaders import load
from .named import NAMED_DATASETS
from .sharing import DatasetCardInfo, IdentifyingDataError, deidentify_dataset, push_dataset
from .splits import LeakageError, LeakageReport, check_leakage, patient_split

__all__ = [
    "DatasetCardInfo",
    "IdentifyingDataError",
    "deidentify_dataset",
    "push_dataset",
    "CHESTXRAY14_LABELS",
    "DICOM_STRUCT",
    "LeakageError",
    "LeakageReport",
    "NAMED_DATASETS",
    "check_leakage",
    "decode_dicom",
    "decode_dicom_columns",
    "dicom_value",
    "load",
    "patient_split",
]
