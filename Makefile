# udp-hotswap: zero-loss hot upgrade of UDP servers in the kernel.
# The README says what each target does and prints.
.PHONY: run regression-demo check check-upstream stress fuzz-proof bench kernel bench-kernel stock-kernel selftests module \
	reload-session checkpatch clean

run:			## hotswapd hot upgrades on stock and patched 6.12: the table
	scripts/run-hotswap-demo

regression-demo:	## the seed-001 scene on stock and patched: where datagrams land
	scripts/run-regression-demo

check:			## build what is stale, run all selftests on both kernels
	scripts/check

check-upstream:		## every kernel BPF selftest of selftests/upstream-bpf-tests
	scripts/check --upstream

stress:			## udp_fuzz per seed on patched, KCSAN and stock, udp_fault, the soak: the tables
	scripts/run-stress

fuzz-proof:		## udp_fuzz on kernels with one fix of issue 12 taken out: how fast it finds each
	scripts/run-fuzz-proof

bench:			## lookup (hash4 on/off/stock), socket setup, migration cost
	scripts/run-bench
	scripts/run-bench-setup
	scripts/run-bench-migrate
	scripts/run-bench-members

kernel:			## the patched debug (test) kernel only
	scripts/build-kernel debug

bench-kernel:		## the patched kernel without debug options
	scripts/build-kernel bench

stock-kernel:		## Debian's unpatched 6.12 cloud kernel
	scripts/fetch-stock-kernel

selftests: kernel	## build selftests/ against the patched UAPI headers
	scripts/build-selftests

module:			## module/ (udp_hotswap.ko) against the patched debug kernel
	scripts/build-module

reload-session:		## the module's files during a server reload, in the VM
	scripts/show-reload-session

checkpatch:		## checkpatch.pl --strict on every patch of the series
	scripts/checkpatch-series

clean:			## remove build/ (the ccache outside the clone stays)
	rm -rf build
