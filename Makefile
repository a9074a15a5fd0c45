# Top-level entry points. Each target delegates to the directory that owns it.
.PHONY: kernels kernels-clean

kernels:  ## build/libtrtcompile_kernels.so (nvcc; ARCHS=90a for one architecture)
	$(MAKE) -C plugins

kernels-clean:
	$(MAKE) -C plugins clean
