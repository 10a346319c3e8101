"""Benchmark exported models: size, load time, latency percentiles, throughput, memory, accuracy.

Never imports TensorFlow at import time: benchmarking exported files works with
only the ``device`` extra. Each (format, threads) is measured in its own
subprocess (:mod:`edgecnn.bench.worker`) for a clean peak RSS.
"""

from edgecnn.bench.run import BenchConfig, benchmark, measure_files

__all__ = ["BenchConfig", "benchmark", "measure_files"]
