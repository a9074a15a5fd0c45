# Top-level entry points. Each target delegates to the directory that owns it.
.PHONY: kernels kernels-clean install demo test

kernels:  ## build/libtrtcompile_kernels.so (nvcc; ARCHS=90a for one architecture)
	$(MAKE) -C plugins

kernels-clean:
	$(MAKE) -C plugins clean

install:  ## install trtcompile and its dependencies (CPU)
	bash scripts/install.sh

demo: install  ## build the SmolLM2 artifact and generate with it
	trtcompile build configs/smollm2-135m.yaml
	trtcompile run artifacts/smollm2-135m --chat -p "What is the capital of France?" --max-tokens 32

test: install  ## the test suite (CPU); GPU and TensorRT tests skip with their reason
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 python3 -m pytest -q -ra
