"""Small, valid CT studies written with pydicom, and a digest to compare what a server returns.

The images are tiny (64x64, 12-bit values in 16-bit words) so that tests can send hundreds of
them quickly, but they are complete enough (file meta, patient/study/series/frame modules) for
Orthanc and dcmtk to accept them as CT Image Storage instances.
"""

from __future__ import annotations

import hashlib
import io
import random
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ROWS = 64
COLUMNS = 64


@dataclass(frozen=True)
class InstanceRecord:
    """One file written by :func:`make_study` and what a server must give back for it."""

    path: Path
    patient_id: str
    study_uid: str
    series_uid: str
    sop_uid: str
    pixel_sha256: str


def _uid(seed: str | None, *parts: object) -> str:
    # A seed makes the UIDs reproducible; without one every call gets fresh UIDs.
    if seed is None:
        return generate_uid()
    return generate_uid(entropy_srcs=[seed, *(str(part) for part in parts)])


# Keeps the high nibble of a 16-bit word's upper byte clear: 12-bit values, as stored.
_HIGH_BYTE_MASK = bytes(value & 0x0F for value in range(256))


def _pixels(rng: random.Random, rows: int, columns: int) -> bytes:
    """Random 12-bit values in little-endian 16-bit words, built with bytes operations
    (a per-pixel loop takes minutes for a benchmark's 100 MB)."""
    count = rows * columns
    words = bytearray(2 * count)
    words[0::2] = rng.randbytes(count)  # low bytes
    words[1::2] = rng.randbytes(count).translate(_HIGH_BYTE_MASK)
    return bytes(words)


def _study_time(study: int) -> str:
    """A valid DICOM TM (HHMMSS) for any study number: one minute apart from 10:00."""
    seconds = (10 * 3600 + 60 * study) % 86400
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


def _dataset(
    *,
    patient_id: str,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    frame_uid: str,
    study: int,
    series: int,
    instance: int,
    pixels: bytes,
    rows: int,
    columns: int,
) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = "20240101"
    ds.StudyTime = _study_time(study)
    ds.AccessionNumber = f"ACC{study:04d}"
    ds.Modality = "CT"
    ds.Manufacturer = "orthgate-netlab"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = f"netlab study {study}"
    ds.SeriesDescription = f"netlab series {series}"
    ds.PatientName = f"NETLAB^{patient_id}"
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.KVP = "120"
    ds.SliceThickness = "1.0"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = str(study + 1)
    ds.SeriesNumber = series + 1
    ds.InstanceNumber = instance + 1
    ds.ImagePositionPatient = ["0.0", "0.0", f"{instance:.1f}"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = frame_uid
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = f"{instance:.1f}"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.PixelSpacing = ["0.5", "0.5"]
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.PixelData = pixels
    return ds


def make_study(
    dest_dir: Path,
    studies: int = 1,
    series_per_study: int = 1,
    instances_per_series: int = 3,
    seed: int | str | None = None,
    patient_id: str | None = None,
    rows: int = ROWS,
    columns: int = COLUMNS,
) -> list[InstanceRecord]:
    """Write ``studies`` x ``series_per_study`` x ``instances_per_series`` CT files to dest_dir.

    Each image is ``rows`` x ``columns`` 16-bit pixels (the default 64 x 64 is 8 KiB; 360 x
    360 is about the 255 KB of a CT slice).

    Files are flat in ``dest_dir`` (``SS-EE-III.dcm``) so ``storescu +sd`` needs no recursion.
    The same ``seed`` gives the same UIDs and pixels; ``None`` gives fresh ones every call.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    key = None if seed is None else str(seed)
    rng = random.Random(key)  # None seeds from the OS
    patient = patient_id or f"NL{rng.getrandbits(32):08X}"
    records: list[InstanceRecord] = []
    width = max(2, len(str(studies - 1)))  # names sort in sending order
    for study in range(studies):
        study_uid = _uid(key, "study", study)
        frame_uid = _uid(key, "frame", study)
        for series in range(series_per_study):
            series_uid = _uid(key, "series", study, series)
            for instance in range(instances_per_series):
                sop_uid = _uid(key, "sop", study, series, instance)
                pixels = _pixels(rng, rows, columns)
                ds = _dataset(
                    patient_id=patient,
                    study_uid=study_uid,
                    series_uid=series_uid,
                    sop_uid=sop_uid,
                    frame_uid=frame_uid,
                    study=study,
                    series=series,
                    instance=instance,
                    pixels=pixels,
                    rows=rows,
                    columns=columns,
                )
                name = f"{study:0{width}d}-{series:02d}-{instance:03d}.dcm"
                path = dest_dir / name
                ds.save_as(path, enforce_file_format=True)
                records.append(
                    InstanceRecord(
                        path=path,
                        patient_id=patient,
                        study_uid=study_uid,
                        series_uid=series_uid,
                        sop_uid=sop_uid,
                        pixel_sha256=hashlib.sha256(pixels).hexdigest(),
                    )
                )
    return records


def pixel_digest(dicom: bytes | Path) -> tuple[str, str]:
    """``(SOPInstanceUID, sha256 of the PixelData bytes)`` of a DICOM file or its bytes."""
    data = dicom.read_bytes() if isinstance(dicom, Path) else dicom
    ds = dcmread(io.BytesIO(data))
    return str(ds.SOPInstanceUID), hashlib.sha256(ds.PixelData).hexdigest()
