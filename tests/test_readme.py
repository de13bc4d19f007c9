"""The README's examples, taken from the README itself and run as a user would."""
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"


def section(title):
    text = README.read_text()
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def code_blocks(text, language):
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


PIPELINE_CHECK = """
import json
import numpy as np
from pystream.pipeline import median_filter, open_pipeline

pipeline = open_pipeline()  # the default: pipelines/processors.json here
img = np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) % 251
out, _ = pipeline.apply(img, {"uid": 1})
print(json.dumps({
    "error": pipeline.last_error,
    "steps": [[s.name, s.enabled, s.errors] for s in pipeline.steps],
    "as_expected": bool(np.allclose(out, median_filter(img, 3) * 2.0)),
}))
"""


def test_the_plugin_example_works_as_written_from_an_empty_directory(tmp_path):
    text = section("Processor pipeline")
    config = code_blocks(text, "json")[0]
    plugin = next(b for b in code_blocks(text, "python") if b.startswith("# processors/myfilter.py"))
    (tmp_path / "pipelines").mkdir()
    (tmp_path / "pipelines" / "processors.json").write_text(config)
    (tmp_path / "processors").mkdir()
    (tmp_path / "processors" / "myfilter.py").write_text(plugin)
    result = subprocess.run([sys.executable, "-c", PIPELINE_CHECK], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["error"] == ""
    assert report["steps"] == [["MedianFilter", True, 0], ["BackgroundSubtract", False, 0],
                               ["MyFilter", True, 0]]
    assert report["as_expected"]


def test_the_spectrum_receiver_example_gets_data(tmp_path, monkeypatch):
    from pystream.publish.zmq_spectra import SpectrumPublisher, SyntheticSpectra
    example = next(b for b in code_blocks(section("Spectrum streams (OVRO-LWA `AvgStreamingOp` over ZMQ)"),
                                          "python") if "SpectrumReceiver(" in b)
    publisher = SpectrumPublisher(port=0)
    port = publisher.endpoint.rsplit(":", 1)[1]
    stop = threading.Event()

    def publish():  # until the example is done: PUB/SUB drops what is sent before it joins
        spectra = SyntheticSpectra(seed=1)
        while not stop.wait(0.02):
            publisher.publish(spectra.next())

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    monkeypatch.chdir(tmp_path)  # its plot_dir="figs" lands here
    scope = {}
    try:
        exec(compile(example.replace("stream_port=9798", f"stream_port={port}"), "README", "exec"),
             scope)
    finally:
        stop.set()
        thread.join(10)
        publisher.close()
        scope.get("receiver") and scope["receiver"].stop()
    assert isinstance(scope["latest"], np.ndarray) and scope["latest"].shape == (10, 768)
    assert scope["delay"] is not None
    assert scope["status"]["running"]
