/* scripts/insn/insn-count.c — a QEMU TCG plugin (user mode: qemu-aarch64, qemu-x86_64 of
 * Debian 12's qemu-user, QEMU 7.2, plugin API version 1) that counts the guest instructions a
 * program executes, in all its threads, and writes the total to the file given as out=PATH
 * when the program exits. Used by scripts/insn/per-minute.sh for jamzd's instructions per
 * minute of playback on aarch64 and x86_64 (the same instrument on both).
 * The few plugin API declarations it needs are written out here (they match QEMU 7.2's
 * include/qemu/qemu-plugin.h): the header is not in any Debian 12 binary package. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
typedef void (*qemu_plugin_vcpu_udata_cb_t)(unsigned int vcpu_index, void *userdata);
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, qemu_plugin_vcpu_udata_cb_t cb,
                                          enum qemu_plugin_cb_flags flags, void *userdata);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);

EXPORT int qemu_plugin_version = 1;
static uint64_t insns;          /* all threads: atomic adds (jamzd's threads run in parallel) */
static char out[4096];

static void tb_exec(unsigned int vcpu, void *n) {
  (void)vcpu;
  __atomic_fetch_add(&insns, (uint64_t)(uintptr_t)n, __ATOMIC_RELAXED);
}
static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
  (void)id;
  qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS,
                                       (void *)(uintptr_t)qemu_plugin_tb_n_insns(tb));
}
static void at_exit(qemu_plugin_id_t id, void *p) {
  (void)id; (void)p;
  FILE *f = out[0] ? fopen(out, "w") : stderr;
  if (!f) return;
  fprintf(f, "insns %" PRIu64 "\n", __atomic_load_n(&insns, __ATOMIC_RELAXED));
  if (f != stderr) fclose(f);
}
EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv) {
  (void)info;
  for (int i = 0; i < argc; i++)
    if (strncmp(argv[i], "out=", 4) == 0) snprintf(out, sizeof out, "%s", argv[i] + 4);
  qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
  qemu_plugin_register_atexit_cb(id, at_exit, NULL);
  return 0;
}
