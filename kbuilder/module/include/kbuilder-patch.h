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
 *
 * KLP_SYSCALL_DEFINE0..6 stand in for SYSCALL_DEFINE0..6 in a patch that
 * changes a system call's body: see below.
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

/*
 * SYSCALL_DEFINEn puts the body into `static inline __do_sys_NAME`, and the
 * kernel's `inline` implies notrace. When GCC keeps that function out of
 * line (it does for about fifty system calls of a 6.1 x86_64 kernel), a
 * changed body lands in a function without an ftrace entry, which livepatch
 * cannot replace. Declaring __do_sys_NAME always_inline first (attributes of
 * declarations merge) moves the body into the traced wrappers
 * (__se_sys_NAME / __x64_sys_NAME, __arm64_sys_NAME), which the running
 * kernel's ftrace knows. The kernel's own SYSCALL_DEFINEx does the rest, so
 * the symbols are those of the original build, on every architecture.
 */
#define __KLP_SYSCALL_DEFINEx(x, sname, ...)                                  \
	static inline long __do_sys##sname(__MAP(x, __SC_DECL, __VA_ARGS__))   \
		__attribute__((__always_inline__));                              \
	SYSCALL_DEFINEx(x, sname, __VA_ARGS__)

#define KLP_SYSCALL_DEFINE0(sname) SYSCALL_DEFINE0(sname)  /* no __do_sys_ helper */
#define KLP_SYSCALL_DEFINE1(name, ...) __KLP_SYSCALL_DEFINEx(1, _##name, __VA_ARGS__)
#define KLP_SYSCALL_DEFINE2(name, ...) __KLP_SYSCALL_DEFINEx(2, _##name, __VA_ARGS__)
#define KLP_SYSCALL_DEFINE3(name, ...) __KLP_SYSCALL_DEFINEx(3, _##name, __VA_ARGS__)
#define KLP_SYSCALL_DEFINE4(name, ...) __KLP_SYSCALL_DEFINEx(4, _##name, __VA_ARGS__)
#define KLP_SYSCALL_DEFINE5(name, ...) __KLP_SYSCALL_DEFINEx(5, _##name, __VA_ARGS__)
#define KLP_SYSCALL_DEFINE6(name, ...) __KLP_SYSCALL_DEFINEx(6, _##name, __VA_ARGS__)

#endif
