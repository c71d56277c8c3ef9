"""data/ is what every user clones: it stays under its size cap."""
from workbench.config import DATA_DIR

CAP_BYTES = 200 * 1024 * 1024


def test_data_folder_stays_under_the_cap():
    files = [p for p in DATA_DIR.rglob("*") if p.is_file() and not p.name.startswith(".")]
    total = sum(p.stat().st_size for p in files)
    assert files and total < CAP_BYTES, f"data/ holds {total / 2**20:.1f} MiB, over the {CAP_BYTES / 2**20:.0f} MiB cap"
