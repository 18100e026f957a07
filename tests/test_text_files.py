"""Annotation and telemetry files that are not UTF-8 text: the error names the file and the line
(Latin-1 and UTF-16 exports, binary files), never a bare UnicodeDecodeError or csv.Error."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from hawkeye.config import compose
from hawkeye.io import check_text_file
from hawkeye.prepare.pd4t import Pd4tConfig, read_annotation_file
from hawkeye.telemetry.csv_import import ImportConfig, ImportReport, read_trips

ROWS = "15-000001_l_001,120,1\n15-000002_r_002,130,2\n"


@pytest.mark.parametrize(("content", "message"), [
    ((ROWS + "15-00000é_l_003,120,1\n").encode("latin-1"),
     r"line 3: byte 0xe9 is not UTF-8 text \(a Latin-1"),
    (ROWS.encode("utf-16"), r"line 1: the file is UTF-16 text"),
    (ROWS.encode() + b"\x00\x01garbage\n", r"line 3: a NUL byte"),
    (ROWS.encode() + b"\n\n\x8f\xff\xfe\x00", r"line 5: byte 0x8f is not UTF-8"),
])
def test_a_file_that_is_not_utf8_text_is_named_with_its_line(content, message,
                                                             tmp_path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"{path}: {message}"):
        check_text_file(path)


def test_utf8_with_a_byte_order_mark_is_text(tmp_path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes(ROWS.encode("utf-8-sig"))
    check_text_file(path)


def test_annotation_and_telemetry_readers_name_the_file_and_line(tmp_path) -> None:
    path = tmp_path / "train.csv"
    path.write_bytes((ROWS + "15-00000é_l_003,120,1\n").encode("cp1252"))
    task = OmegaConf.to_container(compose([]).task, resolve=True)
    with pytest.raises(ValueError, match=rf"{path}: line 3: byte 0xe9"):
        read_annotation_file(path, "train", tmp_path, Pd4tConfig.from_config(task))
    telemetry = OmegaConf.to_container(compose(["task=telemetry"]).task, resolve=True)
    path.write_bytes("trip_id,speed\nA,1.0\nA,\u00e9\n".encode("utf-16"))
    with pytest.raises(ValueError, match=rf"{path}: line 1: the file is UTF-16"):
        read_trips(path, ImportConfig.from_mapping(telemetry["csv_import"]),
                   ImportReport(path))
