# Two commands for a fresh Debian machine:  `make demo`  and  `make test`.
# Each installs what it needs (a virtual environment, the Fashion-MNIST Debian package) first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# MNIST for development and CI lies beside the checkout; elsewhere `netshrink download mnist`.
export NETSHRINK_DATA ?= $(abspath ../shared/data)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install data corpus lint bench clean

demo: install data
	$(BIN)/netshrink demo

test: install data
	$(BIN)/python -m pytest -q --timeout 900
	$(BIN)/ruff check src tests benchmarks

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,onnx,ray,text,structured,pack]'
	touch $@

data: /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz corpus

# The English corpus of the transformer work (netshrink.data.corpus): Debian's python3.11-doc.
# Optional: where the package does not exist, the tests that need it skip and say why.
corpus:
	@[ -d /usr/share/doc/python3.11/html/_sources ] || $(SUDO) apt-get install -y python3.11-doc || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y python3.11-doc; } || \
	  echo "python3.11-doc is not available here: the corpus tests will skip"

/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz:
	$(SUDO) apt-get install -y dataset-fashion-mnist || \
	  { $(SUDO) apt-get update && $(SUDO) apt-get install -y dataset-fashion-mnist; }

lint: install
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs .pytest_cache
