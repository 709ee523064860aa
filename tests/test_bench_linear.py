"""``python -m xce._bench.linear`` on a tiny size: its Markdown table has a row per
implementation and mode, positive times, the matmul floors, and NumPy's peak memory."""

from __future__ import annotations

from xce._bench import linear as bench


def test_tiny_run_gives_a_sane_table(tmp_path, capsys):
    out = tmp_path / "linear.md"
    # NumPy only: torch's rows import torch and time its floors too (seconds, every session)
    impls = ["xce-numpy"]
    argv = ["--size", "32,8,64", "--dtype", "float32", "--min-time", "0.001",
            "--memory", "numpy", "--output", str(out)]  # fmt: skip
    for name in impls:
        argv += ["--impl", name]
    assert bench.main(argv) == 0
    table = out.read_text(encoding="utf-8")
    assert table.strip() == capsys.readouterr().out.strip()
    header, _, *rows = table.strip().splitlines()
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[:6] == ["N", "D", "V", "dtype", "mode", "implementation"]
    cells = [dict(zip(columns, (c.strip() for c in row.strip("|").split("|")), strict=True))
             for row in rows]  # fmt: skip
    assert {(c["implementation"], c["mode"]) for c in cells} == {
        (name, mode) for name in impls for mode in ("forward", "forward+backward")
    }
    for c in cells:
        assert (c["N"], c["D"], c["V"], c["dtype"]) == ("32", "8", "64", "float32")
        assert float(c["ms"]) > 0 and float(c["floor ms"]) > 0 and float(c["× floor"]) > 0
        if c["implementation"] == "xce-numpy":
            # tracemalloc's peak: the gradients at least, with forward + backward
            assert float(c["peak / logits"]) > (0.5 if c["mode"] != "forward" else 0)
