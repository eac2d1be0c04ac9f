/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kbuilder patch-author macros. A source patch may include this header
 * (`#include <kbuilder-patch.h>`; kbuilder puts it on the include path) to
 * declare livepatch callbacks for the object it patches:
 *
 *   static int my_pre_patch(struct klp_object *obj) { ...; return 0; }
 *   KLP_PRE_PATCH_CALLBACK(my_pre_patch);
 *
 * Each macro records a pointer to the function in a section the differ
 * carries into the patch module, where the generated code wires it into
 * the object's struct klp_callbacks.
 */
#ifndef KBUILDER_PATCH_H
#define KBUILDER_PATCH_H

struct klp_object;

#define __KLP_CALLBACK(kind, fn, type)                                        \
	static typeof(type) __kbuilder_cb_##kind##_##fn __used                  \
	__attribute__((__section__(".klp.callbacks." #kind))) = fn

#define KLP_PRE_PATCH_CALLBACK(fn)    __KLP_CALLBACK(pre_patch, fn, int (*)(struct klp_object *))
#define KLP_POST_PATCH_CALLBACK(fn)   __KLP_CALLBACK(post_patch, fn, void (*)(struct klp_object *))
#define KLP_PRE_UNPATCH_CALLBACK(fn)  __KLP_CALLBACK(pre_unpatch, fn, void (*)(struct klp_object *))
#define KLP_POST_UNPATCH_CALLBACK(fn) __KLP_CALLBACK(post_unpatch, fn, void (*)(struct klp_object *))

#endif
