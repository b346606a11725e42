"""Copying a submission: plain files only, nothing followed, a size limit, a stable content hash."""

from __future__ import annotations

import os

import pytest

from seminar_lib.grading.submission import (SubmissionError, copy_submission, list_submission, read_plain_file,
                                            submission_sha256)


@pytest.fixture
def folder(tmp_path):
    sub = tmp_path / "sub"
    (sub / "pkg").mkdir(parents=True)
    (sub / "solution.py").write_text("x = 1\n")
    (sub / "pkg" / "util.py").write_text("y = 2\n")
    (sub / ".hidden").write_text("skipped")
    (sub / "__pycache__").mkdir()
    return sub


def test_plain_files_are_copied_and_hidden_names_skipped(folder, tmp_path):
    files = copy_submission(folder, tmp_path / "copy")
    assert [f.relative for f in files] == ["pkg/util.py", "solution.py"]
    assert (tmp_path / "copy" / "pkg" / "util.py").read_text() == "y = 2\n"
    assert not (tmp_path / "copy" / ".hidden").exists()


def test_the_hash_depends_on_names_and_contents_only(folder, tmp_path):
    first = submission_sha256(folder)
    os.utime(folder / "solution.py", (0, 0))
    assert submission_sha256(folder) == first
    (folder / "solution.py").write_text("x = 2\n")
    assert submission_sha256(folder) != first
    (folder / "solution.py").rename(folder / "solution2.py")
    assert submission_sha256(folder) not in (first,)


@pytest.mark.parametrize("make, reason", [
    (lambda sub, tmp: (sub / "solution.py").unlink() or (sub / "solution.py").symlink_to("/etc/passwd"),
     "solution.py is a symbolic link"),
    (lambda sub, tmp: (sub / "dangling.py").symlink_to(tmp / "nowhere"), "dangling.py is a symbolic link"),
    (lambda sub, tmp: (sub / "zero").symlink_to("/dev/zero"), "zero is a symbolic link"),
    (lambda sub, tmp: (sub / "linked_dir").symlink_to("/etc"), "linked_dir is a symbolic link"),
    (lambda sub, tmp: os.mkfifo(sub / "pipe"), "pipe is not a plain file"),
])
def test_links_and_special_files_are_rejected_with_a_reason(folder, tmp_path, make, reason):
    make(folder, tmp_path)
    with pytest.raises(SubmissionError, match=reason):
        copy_submission(folder, tmp_path / "copy")


def test_a_symlinked_or_missing_submission_folder_is_rejected(folder, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(folder)
    with pytest.raises(SubmissionError, match="is a symbolic link"):
        list_submission(link)
    (tmp_path / "etc").symlink_to("/etc")
    with pytest.raises(SubmissionError, match="is a symbolic link"):
        list_submission(tmp_path / "etc")
    with pytest.raises(SubmissionError, match="does not exist"):
        list_submission(tmp_path / "absent")


def test_the_size_limit(folder, tmp_path):
    (folder / "big.bin").write_bytes(b"\0" * 5000)
    with pytest.raises(SubmissionError, match="the limit is"):
        list_submission(folder, max_bytes=4096)


def test_read_plain_file_refuses_devices_links_and_oversize(tmp_path):
    (tmp_path / "f").write_bytes(b"abc")
    assert read_plain_file(tmp_path / "f", 3) == b"abc"
    with pytest.raises(SubmissionError, match="larger than"):
        read_plain_file(tmp_path / "f", 2)
    (tmp_path / "z").symlink_to("/dev/zero")
    with pytest.raises(SubmissionError):
        read_plain_file(tmp_path / "z", 10)
    with pytest.raises(SubmissionError, match="not a plain file"):
        read_plain_file(os.devnull and __import__("pathlib").Path("/dev/zero"), 10)
