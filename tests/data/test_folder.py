"""``folder:PATH``: layouts, attributes.csv, and an error naming the file for each bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from innx.data import open_dataset
from innx.errors import DataError


def write_images(root: Path, names: list[str], mode: str = "RGB") -> list[np.ndarray]:
    """PNG files at ``root/name`` with distinct random pixels; returns the arrays [H, W, C]."""
    rng = np.random.default_rng(5)
    arrays = []
    for name in names:
        shape = (6, 10, 3) if mode == "RGB" else (6, 10)
        array = rng.integers(0, 256, shape, dtype=np.uint8)
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(root / name)  # [H, W] → L, [H, W, 3] → RGB
        arrays.append(array)
    return arrays


def test_class_subfolders(tmp_path: Path) -> None:
    names = ["dog/b.png", "cat/z.png", "cat/a.PNG", "dog/deep/c.png", ".hidden/x.png", "dog/.y.png"]
    arrays = write_images(tmp_path, names)
    (tmp_path / "notes.txt").write_text("not an image")
    ds = open_dataset(f"folder:{tmp_path}")
    assert ds.classes == ("cat", "dog")
    assert ds.paths == ["cat/a.PNG", "cat/z.png", "dog/b.png", "dog/deep/c.png"]  # type: ignore[attr-defined]
    assert [ds[i][1] for i in range(len(ds))] == [0, 0, 1, 1]
    x, _, attributes = ds[2]
    assert np.array_equal(x.permute(1, 2, 0).numpy(), arrays[0]) and attributes.shape == (0,)
    assert ds.attributes == () and ds.image_size == (6, 10)  # (H, W), every image alike


def test_flat_folder_is_unlabelled_and_grey_becomes_rgb(tmp_path: Path) -> None:
    (grey,) = write_images(tmp_path, ["only.png"], mode="L")
    ds = open_dataset(f"folder:{tmp_path}")
    x, label, _ = ds[0]
    assert ds.classes is None and label == -1
    assert x.shape == (3, 6, 10) and all(np.array_equal(c, grey) for c in x.numpy())


def test_attributes_csv_kinds_and_values(tmp_path: Path) -> None:
    write_images(tmp_path, ["a.png", "b.png"])
    (tmp_path / "attributes.csv").write_text(
        "path,colour,size,count\nb.png,red,2.5,3\n./a.png,blue,-1e-3,nan_is_text\n"
    )
    ds = open_dataset(f"folder:{tmp_path}")
    colour, size, count = ds.attributes
    assert (colour.kind, colour.categories) == ("categorical", ("blue", "red"))
    assert (size.kind, size.categories) == ("continuous", ())
    assert count.kind == "categorical" and count.categories == ("3", "nan_is_text")
    assert ds[0][2].tolist() == pytest.approx([0.0, -1e-3, 1.0])
    assert ds[1][2].tolist() == [1.0, 2.5, 0.0]


def test_image_size_is_read_from_the_headers(tmp_path: Path) -> None:
    for i in range(5):
        Image.new("RGB", (32, 32), (i * 40, 0, 0)).save(tmp_path / f"{i}.png")
    ds = open_dataset(f"folder:{tmp_path}")
    assert ds.image_size == (32, 32)
    (tmp_path / "0.png").write_bytes(b"not an image any more")  # read once per dataset
    assert ds.image_size == (32, 32)
    with pytest.raises(DataError, match=r"cannot read image .*0.png .*replace the file"):
        _ = open_dataset(f"folder:{tmp_path}").image_size


def test_images_of_varying_sizes_have_no_size(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32)).save(tmp_path / "a.png")
    Image.new("RGB", (32, 16)).save(tmp_path / "b.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "c.png")
    assert open_dataset(f"folder:{tmp_path}").image_size is None


def test_the_size_is_read_without_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_images(tmp_path, ["a.png", "b.png"])

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("an image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    ds = open_dataset(f"folder:{tmp_path}")
    assert ds.image_size == (6, 10)
    with pytest.raises(AssertionError, match="decoded"):
        ds[0]  # the patch does catch a decode


@pytest.mark.parametrize(
    ("cells", "kind", "categories", "values"),
    [
        (["red", "blue", "red"], "categorical", ("blue", "red"), [1, 0, 1]),
        (["3", "x", "3"], "categorical", ("3", "x"), [0, 1, 0]),
        ([str(i % 10) for i in range(30)], "categorical", tuple("0123456789"), None),
        (["10", "2", "2.0", "-1"], "categorical", ("-1", "2", "10"), [2, 1, 1, 0]),
        ([str(i) for i in range(32)], "categorical", tuple(str(i) for i in range(32)), None),
        ([str(i) for i in range(40)], "continuous", (), list(range(40))),
        (["0.5", "1", "2"], "continuous", (), [0.5, 1, 2]),
        (["1.5", "1.5"], "continuous", (), [1.5, 1.5]),
    ],
)
def test_the_kind_of_a_column(
    tmp_path: Path, cells: list[str], kind: str, categories: tuple[str, ...], values: list | None
) -> None:
    names = [f"{i:03}.png" for i in range(len(cells))]
    write_images(tmp_path, names)
    rows = "".join(f"{name},{cell}\n" for name, cell in zip(names, cells, strict=True))
    (tmp_path / "attributes.csv").write_text("path,c\n" + rows)
    ds = open_dataset(f"folder:{tmp_path}")
    (attribute,) = ds.attributes
    assert (attribute.kind, attribute.categories) == (kind, categories)
    read = [ds[i][2].item() for i in range(len(ds))]
    if values is None:  # whole numbers from 0: the index is the number
        values = [int(c) for c in cells]
    assert read == pytest.approx(values)


@pytest.mark.parametrize(
    ("csv", "message"),
    [
        ("path,c\na.png,x\nb.png,y\nz.png,q\n", r"attributes.csv, row 4: z.png is not an image in"),
        ("path,c\na.png,x\n", r"attributes.csv has no row for b.png; add one row per image"),
        ("path,c\na.png,x\nb.png\n", r"attributes.csv, row 3: 1 fields but the header has 2"),
        ("path,c\na.png,x,extra\nb.png,y\n", r"row 2: 3 fields but the header has 2"),
        ("path,c\na.png,x\na.png,y\nb.png,z\n", r"row 3: a.png is listed again \(first in row 2\)"),
        ("path,c\na.png,\nb.png,y\n", r"row 2: empty value for 'c'"),
        ("file,c\na.png,x\n", r"the first line must be the header path,"),
        ("path,c,c\na.png,x,y\n", r"attribute 'c' appears twice"),
    ],
)
def test_bad_attributes_csv_names_file_and_row(tmp_path: Path, csv: str, message: str) -> None:
    write_images(tmp_path, ["a.png", "b.png"])
    (tmp_path / "attributes.csv").write_text(csv)
    with pytest.raises(DataError, match=message) as err:
        open_dataset(f"folder:{tmp_path}")
    assert "\n" not in str(err.value)


def test_corrupt_image_is_named_when_read(tmp_path: Path) -> None:
    write_images(tmp_path, ["cls/good.png"])
    (tmp_path / "cls" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    ds = open_dataset(f"folder:{tmp_path}")
    assert ds[1][0].shape == (3, 6, 10)  # good.png sorts after bad.png
    with pytest.raises(DataError, match=r"cannot read image .*cls/bad.png .*replace the file"):
        ds[0]


def test_image_removed_after_opening_is_named(tmp_path: Path) -> None:
    write_images(tmp_path, ["a.png"])
    ds = open_dataset(f"folder:{tmp_path}")
    (tmp_path / "a.png").unlink()
    with pytest.raises(DataError, match=r"a.png does not exist"):
        ds[0]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: None, "holds no images"),
        (
            lambda root: write_images(root, ["top.png", "cls/in.png"]),
            "mixes images at the top level",
        ),
        (
            lambda root: (root / "empty").mkdir() or write_images(root, ["cls/in.png"]),
            "class folder .*empty holds no images",
        ),
    ],
)
def test_bad_folders(tmp_path: Path, setup: object, message: str) -> None:
    root = tmp_path / "imgs"
    root.mkdir()
    setup(root)  # type: ignore[operator]
    with pytest.raises(DataError, match=message):
        open_dataset(f"folder:{root}")


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not exist or is not a directory"):
        open_dataset(f"folder:{tmp_path / 'nope'}")


def test_relative_path_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_images(tmp_path / "imgs", ["a.png"])
    monkeypatch.chdir(tmp_path)
    ds = open_dataset("folder:imgs")
    assert ds.spec == f"folder:{tmp_path / 'imgs'}" and ds.root == str(tmp_path / "imgs")


def test_fingerprint_sees_listing_and_csv(tmp_path: Path) -> None:
    write_images(tmp_path, ["a.png", "b.png"])
    first = open_dataset(f"folder:{tmp_path}").fingerprint()
    (tmp_path / "attributes.csv").write_text("path,c\na.png,x\nb.png,y\n")
    second = open_dataset(f"folder:{tmp_path}").fingerprint()
    write_images(tmp_path, ["c.png"])
    (tmp_path / "attributes.csv").write_text("path,c\na.png,x\nb.png,y\nc.png,z\n")
    third = open_dataset(f"folder:{tmp_path}").fingerprint()
    assert len({first, second, third}) == 3
    assert third == open_dataset(f"folder:{tmp_path}").fingerprint()


def test_a_symlink_loop_is_one_line_naming_the_link(tmp_path: Path) -> None:
    write_images(tmp_path, ["cat/a.png", "cat/sub/b.png", "dog/c.png"])
    (tmp_path / "cat" / "sub" / "up").symlink_to("..")  # back to a folder above: endless walk
    with pytest.raises(DataError) as caught:
        open_dataset(f"folder:{tmp_path}")
    assert str(caught.value) == (
        f"{tmp_path / 'cat' / 'sub' / 'up'} is a symbolic link to a folder that contains it "
        "(a loop); remove the link or point it elsewhere"
    )
    (tmp_path / "cat" / "sub" / "up").unlink()
    (tmp_path / "dog" / "self").symlink_to("self")  # a link to itself cannot be followed at all
    with pytest.raises(DataError, match=r"cannot follow .*dog/self \(a symbolic link loop\)"):
        open_dataset(f"folder:{tmp_path}")
    (tmp_path / "dog" / "self").unlink()
    (tmp_path / "dog" / "cats").symlink_to(tmp_path / "cat")  # a link elsewhere is followed
    ds = open_dataset(f"folder:{tmp_path}")
    assert sorted(ds.paths) == ["cat/a.png", "cat/sub/b.png", "dog/c.png", "dog/cats/a.png",
                                "dog/cats/sub/b.png"]  # fmt: skip


def test_an_image_before_a_folder_of_the_same_stem_keeps_the_order_by_name(tmp_path: Path) -> None:
    write_images(tmp_path, ["k/a/x.png", "k/a-1.png", "k/b.png"])
    assert open_dataset(f"folder:{tmp_path}").paths == ["k/a/x.png", "k/a-1.png", "k/b.png"]
