"""``celeba`` on the list files of the real layout and small JPEGs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from innx.data import open_dataset
from innx.errors import ConfigError, DataError

if TYPE_CHECKING:
    from conftest import CelebA


@pytest.mark.parametrize(
    ("split", "code"), [("train", 0), ("valid", 1), ("test", 2), ("all", None)]
)
def test_splits_and_attributes(celeba: CelebA, split: str, code: int | None) -> None:
    ds = open_dataset(f"celeba:{celeba.root},split={split}")
    keep = [i for i, p in enumerate(celeba.partition) if code is None or p == code]
    assert len(ds) == len(keep) and ds.classes is None
    assert len(ds.attributes) == 40 and ds.attributes[31].name == "Smiling"
    assert all(a.kind == "categorical" and a.categories == ("no", "yes") for a in ds.attributes)
    for k, i in enumerate(keep):
        x, label, attributes = ds[k]
        assert x.shape == (3, 24, 20) and label == -1
        assert attributes.tolist() == [(v + 1) / 2 for v in celeba.values[i]]


def test_an_attribute_as_label(celeba: CelebA) -> None:
    ds = open_dataset(f"celeba:{celeba.root},split=all,label=Smiling")
    assert ds.classes == ("no", "yes")
    assert [ds[i][1] for i in range(len(ds))] == [int(v > 0) for v in celeba.values[:, 31]]
    with pytest.raises(ConfigError, match=r"label='smiling' .* choose none or one of: 5_o_Clock"):
        open_dataset(f"celeba:{celeba.root},label=smiling")


def test_missing_files_say_where_to_get_them(celeba: CelebA) -> None:
    (celeba.folder / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match=r"celeba/list_eval_partition.txt, not found; download"):
        open_dataset(f"celeba:{celeba.root}")


def test_missing_image_is_named_when_read(celeba: CelebA) -> None:
    ds = open_dataset(f"celeba:{celeba.root},split=test")
    (celeba.folder / "img_align_celeba" / "000005.jpg").unlink()
    with pytest.raises(DataError, match=r"000005.jpg does not exist"):
        ds[0]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace(" 1", " 2", 1), "line 3: values must be -1 or 1"),
        (lambda t: t.replace("6\n", "7\n", 1), "lists 6 images but line 1 announces 7"),
        (lambda t: "\n".join(t.splitlines()[:-1]) + "\n000006.jpg 1\n", "line 8: 2 fields"),
    ],
)
def test_malformed_attribute_file(celeba: CelebA, edit: object, message: str) -> None:
    path = celeba.folder / "list_attr_celeba.txt"
    path.write_text(edit(path.read_text()))  # type: ignore[operator]
    with pytest.raises(DataError, match=message):
        open_dataset(f"celeba:{celeba.root}")
