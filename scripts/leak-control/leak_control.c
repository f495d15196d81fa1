// SPDX-License-Identifier: GPL-2.0
/*
 * The positive control of make check's kmemleak run (scripts/test-vm-run):
 * loading this module loses 8 allocations, which kmemleak must report, so
 * that a scan that finds nothing means there was nothing to find.
 * Never load it anywhere else.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

static int __init leak_control_init(void)
{
	int i;

	for (i = 0; i < 8; i++) {
		void *p = kmalloc(256, GFP_KERNEL);

		if (!p)
			return -ENOMEM;
		memset(p, 0x5a, 256);
		/* Dropped on purpose; the compiler must not drop the store. */
		OPTIMIZER_HIDE_VAR(p);
	}
	return 0;
}
module_init(leak_control_init);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Loses 8 allocations: a positive control for kmemleak");
