"""Seeded mutation fuzzing of the CLI's inputs (issue 16), run in one process.

Four real inputs are mutated case by case: a real Aperio SVS (``CMU-1-Small-Region.svs``
from ``CDFIS_TEST_DATA``: its TIFF directories and tag values more often than its pixel
data), a QuPath GeoJSON and an ASAP XML of a generated demo slide, and a labels CSV of that
slide. Each mutated file goes through the CLI **in this process** (``cdfis info``,
``cdfis import``, and ``cdfis slides remove`` after a successful import), so a case costs
milliseconds, not an interpreter start. Every case is bounded: a soft timeout (SIGALRM)
records a hang, and ``faulthandler`` ends the whole process if a case ever blocks in C
code. A crash (SIGSEGV...) ends the process too, and the last ``start`` line in the
results names the case. The test (``test_fuzz_inputs.py``) runs this as a subprocess for
that reason and checks the results.

Every case is seeded by its name (``<format>-<index>`` with the campaign seed), so one can
be replayed alone: ``python tests/fuzz/fuzz_campaign.py --data DIR --work DIR --only
geojson-17``. Results: one JSON object per line in ``<work>/results.jsonl``.
"""

from __future__ import annotations

import argparse
import faulthandler
import io
import json
import os
import random
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

CASES = {"svs": 110, "geojson": 70, "xml": 60, "csv": 60}
"""Cases per input format (300 in all)."""
IMPORT_SVS_EVERY = 8
"""Every n-th mutated SVS is also imported (tissue detection decodes all its tiles)."""
SOFT_TIMEOUT_S = 60
HARD_TIMEOUT_S = 180
EXTREME_NUMBERS = [
    "NaN", "Infinity", "-Infinity", "nan", "inf", "1e300", "-1e300", "1e309", "-7", "0",
    "99999999999999999999999", "1e-320", "", "abc", "3.4.5", "1,5", "0x1F", "1_000",
]  # fmt: skip
NOISE = ["{", "}", "[", "]", "<", ">", '"', "'", ",", ";", "\t", "\x00", "&amp;", "&xx;",
         "<!--", "]]>", "\\u0000", "\ufeff", "€", "\r\n", "$", "=SUM(A1)"]  # fmt: skip
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


class CaseTimeout(Exception):
    """A case ran past :data:`SOFT_TIMEOUT_S`."""


# -- mutators --------------------------------------------------------------------------------


def mutate_bytes(data: bytes, rng: random.Random, hot: list[tuple[int, int]]) -> bytes:
    """1-4 byte-level edits, aimed at the ``hot`` (offset, length) regions two times in
    three: flips, random spans, zeroed spans, a truncation, a duplicated or cut span."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if hot and rng.random() < 2 / 3:
            start, length = rng.choice(hot)
            at = start + rng.randrange(max(length, 1))
        else:
            at = rng.randrange(max(len(out), 1))
        at = min(at, max(len(out) - 1, 0))
        op = rng.choice(["flip", "flip", "random", "zero", "max", "truncate", "dup", "cut"])
        span = rng.choice([1, 2, 4, 8, 64, 512])
        if op == "flip" and out:
            out[at] ^= 1 << rng.randrange(8)
        elif op == "random":
            out[at : at + span] = bytes(rng.randrange(256) for _ in range(span))
        elif op == "zero":
            out[at : at + span] = bytes(span)
        elif op == "max":
            out[at : at + span] = b"\xff" * span
        elif op == "truncate" and rng.random() < 0.3:
            del out[at:]
        elif op == "dup":
            out[at:at] = out[at : at + span]
        elif op == "cut":
            del out[at : at + span]
    return bytes(out)


def mutate_text(text: str, rng: random.Random) -> str:
    """1-3 text-level edits: a number made extreme, a slice cut or doubled, noise inserted,
    lines swapped or cut, or (rarely) byte-level damage that may break the encoding."""
    for _ in range(rng.randint(1, 3)):
        op = rng.choice(["number", "number", "number", "cut", "dup", "noise", "lines", "bytes"])
        if op == "number":
            matches = list(NUMBER.finditer(text))
            if matches:
                m = rng.choice(matches)
                text = text[: m.start()] + rng.choice(EXTREME_NUMBERS) + text[m.end() :]
        elif op in ("cut", "dup") and text:
            a = rng.randrange(len(text))
            b = min(len(text), a + rng.choice([1, 3, 10, 100, 1000]))
            text = text[:a] + (text[a:b] * 2 if op == "dup" else "") + text[b:]
        elif op == "noise":
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(NOISE) * rng.choice([1, 1, 2, 50]) + text[at:]
        elif op == "lines":
            lines = text.splitlines(keepends=True)
            if len(lines) > 2:
                i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], ("" if rng.random() < 0.3 else lines[i])
                text = "".join(lines)
        else:
            raw = mutate_bytes(text.encode("utf-8", errors="surrogateescape"), rng, [])
            text = raw.decode("utf-8", errors="surrogateescape")
    return text


def tiff_structure(path: Path) -> list[tuple[int, int]]:
    """(offset, length) of every TIFF directory and tag value of ``path``."""
    import tifffile

    regions = []
    with tifffile.TiffFile(path) as tif:
        for page in tif.pages:
            regions.append((page.offset, 2 + 12 * len(page.tags) + 4))
            for tag in page.tags:
                regions.append((tag.valueoffset, max(1, min(tag.count, 64) * 4)))
    return regions


# -- inputs ----------------------------------------------------------------------------------


def make_inputs(data: Path, work: Path) -> dict[str, Path]:
    """The four base inputs: the real SVS (as it is), and the demo slide's GeoJSON, an ASAP
    XML of the same polygons (with a rectangle and a dot annotation) and a labels CSV."""
    from cdfis_desktop.core.demo import generate_demo_slides

    (demo,) = generate_demo_slides(work / "demo", n_slides=1, size_px=(1024, 768), seed=0)
    features = json.loads(demo.annotations_path.read_text())["features"]
    parts = ['<?xml version="1.0"?>\n<ASAP_Annotations>\n<Annotations>']
    for number, feature in enumerate(features):
        name = feature["properties"]["classification"]["name"]
        ring = feature["geometry"]["coordinates"][0]
        coords = "".join(
            f'<Coordinate Order="{k}" X="{x}" Y="{y}"/>' for k, (x, y) in enumerate(ring[:-1])
        )
        parts.append(
            f'<Annotation Name="A{number}" Type="Polygon" PartOfGroup="{name}">'
            f"<Coordinates>{coords}</Coordinates></Annotation>"
        )
    parts.append(
        '<Annotation Name="R" Type="Rectangle" PartOfGroup="Tumor"><Coordinates>'
        '<Coordinate Order="0" X="10" Y="10"/><Coordinate Order="1" X="200" Y="10"/>'
        '<Coordinate Order="2" X="200" Y="120"/><Coordinate Order="3" X="10" Y="120"/>'
        '</Coordinates></Annotation><Annotation Name="D" Type="Dot" PartOfGroup="None">'
        '<Coordinates><Coordinate Order="0" X="5" Y="5"/></Coordinates></Annotation>'
    )
    parts.append("</Annotations>\n<AnnotationGroups/>\n</ASAP_Annotations>\n")
    xml = work / "demo" / "demo-1.xml"
    xml.write_text("\n".join(parts), encoding="utf-8")
    rows = ["x,y,label,width,height,slide"]
    for k in range(24):
        rows.append(f"{(k % 6) * 160},{(k // 6) * 160},{('Tumor', 'Stroma')[k % 2]},128,128,demo-1")
    labels = work / "demo" / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return {
        "svs": data / "slides" / "CMU-1-Small-Region.svs",
        "geojson": demo.annotations_path,
        "xml": xml,
        "csv": labels,
        "slide": demo.slide_path,
    }


# -- running cases ---------------------------------------------------------------------------


def run_cli(args: list[str]) -> tuple[int, str]:
    """``cdfis ARGS`` in this process: (exit status, last line of stderr)."""
    from cdfis_desktop.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(args)
        except SystemExit as exc:  # argparse usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    lines = err.getvalue().strip().splitlines()
    return code, (lines[-1] if lines else "")


def case_commands(
    fmt: str, index: int, path: Path, inputs: dict[str, Path], work: Path
) -> list[list[str]]:
    """The commands one case runs; a ``slides remove`` follows each successful import."""
    slide = str(inputs["slide"])
    project = str(work / f"project-{fmt}")
    if fmt == "svs":
        commands = [["info", str(path)]]
        if index % IMPORT_SVS_EVERY == 0:
            commands.append(["import", "--project", project, str(path), "--patch-px", "256",
                             "--mpp", "4"])  # fmt: skip
        return commands
    option = "--labels" if fmt == "csv" else "--annotations"
    return [["import", "--project", project, slide, option, str(path), "--patch-px", "64",
             "--mpp", "2", "--min-tissue", "0.3"]]  # fmt: skip


def run_case(fmt: str, index: int, seed: int, inputs: dict[str, Path], work: Path,
             log: Callable[[dict[str, object]], None]) -> None:  # fmt: skip
    rng = random.Random(f"{seed}-{fmt}-{index}")
    base = inputs[fmt]
    name = f"{fmt}-{index}{base.suffix}"
    path = work / "cases" / name
    if fmt == "svs":
        path.write_bytes(mutate_bytes(base.read_bytes(), rng, tiff_structure(base)))
    else:
        text = mutate_text(base.read_text(encoding="utf-8"), rng)
        path.write_bytes(text.encode("utf-8", errors="surrogateescape"))
    for args in case_commands(fmt, index, path, inputs, work):
        log({"event": "start", "case": f"{fmt}-{index}", "args": args})
        started = time.monotonic()
        signal.alarm(SOFT_TIMEOUT_S)
        try:
            code, message = run_cli(args)
        except CaseTimeout:
            code, message = -1, f"no result after {SOFT_TIMEOUT_S} s"
        finally:
            signal.alarm(0)
        log({"event": "done", "case": f"{fmt}-{index}", "command": args[0], "code": code,
             "message": message[:300], "seconds": round(time.monotonic() - started, 3)})  # fmt: skip
        if args[0] == "import" and code == 0:
            target = path.name if fmt == "svs" else inputs["slide"].name
            project = args[args.index("--project") + 1]
            code, message = run_cli(["slides", "remove", "--project", project, target])
            log({"event": "done", "case": f"{fmt}-{index}", "command": "slides remove",
                 "code": code, "message": message[:300], "seconds": 0.0})  # fmt: skip
    path.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="CDFIS_TEST_DATA folder")
    parser.add_argument("--work", type=Path, required=True, help="an empty scratch folder")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the case counts")
    parser.add_argument("--only", default=None, help="run one case, e.g. geojson-17")
    args = parser.parse_args()
    os.environ.setdefault("CDFIS_ANNOTATION_TIMEOUT_S", "20")  # the product's limit first
    faulthandler.enable()

    def on_alarm(_signum: int, _frame: object) -> None:
        raise CaseTimeout

    signal.signal(signal.SIGALRM, on_alarm)
    (args.work / "cases").mkdir(parents=True, exist_ok=True)
    inputs = make_inputs(args.data, args.work)
    results = (args.work / "results.jsonl").open("a", encoding="utf-8")

    def log(record: dict[str, object]) -> None:
        results.write(json.dumps(record) + "\n")
        results.flush()

    cases = [(fmt, i) for fmt, n in CASES.items() for i in range(max(1, round(n * args.scale)))]
    if args.only:
        fmt, _, index = args.only.partition("-")
        cases = [(fmt, int(index))]
    for fmt, index in cases:
        faulthandler.dump_traceback_later(HARD_TIMEOUT_S, exit=True)
        run_case(fmt, index, args.seed, inputs, args.work, log)
        faulthandler.cancel_dump_traceback_later()
    log({"event": "finished", "cases": len(cases)})
    shutil.rmtree(args.work / "cases", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
