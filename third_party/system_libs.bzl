"""A repository rule that turns Debian's pkg-config modules into cc_library targets.

BUILD files then depend on `@system//:grpc` instead of spelling link flags by hand.
"""

def _pkg_config(ctx, args):
    res = ctx.execute(["pkg-config"] + args)
    if res.return_code != 0:
        fail("pkg-config %s failed: %s" % (" ".join(args), res.stderr))
    return [f for f in res.stdout.strip().split(" ") if f]

def _system_libs_impl(ctx):
    lines = ['package(default_visibility = ["//visibility:public"])', ""]
    for name, spec in ctx.attr.libs.items():
        modules = spec.split(" ")
        cflags = _pkg_config(ctx, ["--cflags"] + modules)
        libs = _pkg_config(ctx, ["--libs"] + modules)

        # System headers live under /usr/include, visible to the compiler already; defines and
        # extra include dirs are kept.
        copts = [f for f in cflags if f != "-I/usr/include"]
        lines.append("cc_library(")
        lines.append("    name = %r," % name)
        lines.append("    copts = %r," % copts)
        lines.append("    linkopts = %r," % libs)
        lines.append(")")
        lines.append("")
    for name, flags in ctx.attr.plain.items():
        lines.append("cc_library(name = %r, linkopts = %r)" % (name, flags.split(" ")))
        lines.append("")
    ctx.file("WORKSPACE", 'workspace(name = "%s")\n' % ctx.name)
    ctx.file("BUILD", "\n".join(lines))

system_libs = repository_rule(
    implementation = _system_libs_impl,
    attrs = {
        # target name -> space-separated pkg-config modules
        "libs": attr.string_dict(),
        # target name -> link flags, for libraries that ship no .pc file
        "plain": attr.string_dict(),
    },
    local = True,
)
