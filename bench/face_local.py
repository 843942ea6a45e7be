"""Benchmark: the `local` face adapter's verification time, probe plus reference, as the API would call it.

    python bench/face_local.py [--runs 20]

Each run is one `LocalFaceAdapter.result()`: decode and encode the reference photo (the 256 px registry
photo of tests/data/faces) and one probe, then compare. Probes: the reference-sized photo, and phone-sized
JPEGs (the astronaut upscaled to 1280 px and 3000 px, quality 85), whose decoding and downscaling are part
of the cost. Prints model load time, then median / p95 / max per probe, in seconds. Needs the `face` extra
(pip install 'zhangshangban[face]').
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACES = ROOT / "tests" / "data" / "faces"
sys.path.insert(0, str(ROOT))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def phone_sized(photo: bytes, side: int) -> bytes:
    from PIL import Image

    with Image.open(io.BytesIO(photo)) as image:
        large = image.convert("RGB").resize((side, side), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    large.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    from identity.errors import ConfigurationError
    from identity.local import LocalFaceAdapter

    began = time.perf_counter()
    try:
        adapter = LocalFaceAdapter()
    except ConfigurationError as exc:
        sys.exit(str(exc))
    load = time.perf_counter() - began

    from identity.interface import Identity

    reference = (FACES / "astronaut.jpg").read_bytes()
    identity = Identity("张伟", "410105198503120013", reference_photo=reference)
    probes = {
        "256 px (reference-sized)": reference,
        "1280 px phone JPEG": phone_sized(reference, 1280),
        "3000 px phone JPEG": phone_sized(reference, 3000),
    }
    import dlib

    print(f"local face adapter: python {platform.python_version()}, dlib {dlib.__version__}, "
          f"{os.cpu_count()} CPUs, {args.runs} runs per probe (after 2 warm-up runs)")
    print(f"model load: {load:.3f} s")
    print(f"{'probe':28} {'bytes':>9} {'median':>8} {'p95':>8} {'max':>8}")
    for label, probe in probes.items():
        evidence = {"image": base64.b64encode(probe).decode("ascii")}
        session = adapter.start(verification_id="bench", identity=identity, purpose="bench")
        timings = []
        for run in range(args.runs + 2):
            began = time.perf_counter()
            result = adapter.result(session=session, identity=identity, evidence=evidence)
            elapsed = time.perf_counter() - began
            assert result.passed, result
            if run >= 2:
                timings.append(elapsed)
        print(f"{label:28} {len(probe):>9} {statistics.median(timings):>8.3f} {percentile(timings, 0.95):>8.3f} "
              f"{max(timings):>8.3f}")


if __name__ == "__main__":
    main()
