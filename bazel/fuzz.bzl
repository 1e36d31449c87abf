"""berth_fuzz_test: one libFuzzer target that is also an ordinary regression test.

With the default (g++) build the target links test/fuzz:replay_main and replays every seed
input through LLVMFuzzerTestOneInput. With `--config=fuzz` (clang-14, `--define=fuzz=1`) it links
libFuzzer and fuzzes for $FUZZ_SECONDS (default 20), starting from the seeds; new inputs go to a
scratch corpus under $TEST_TMPDIR, crashes to $TEST_UNDECLARED_OUTPUTS_DIR.
"""

def berth_fuzz_test(name, srcs, deps = [], corpus = [], copts = [], size = "medium", tags = []):
    native.cc_binary(
        name = name + "_bin",
        testonly = True,
        srcs = srcs,
        copts = copts,
        deps = deps + select({
            "//bazel:fuzzing": [],
            "//conditions:default": ["//test/fuzz:replay_main"],
        }),
        linkopts = select({
            "//bazel:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
    )
    native.filegroup(name = name + "_corpus", srcs = corpus, testonly = True)
    native.sh_test(
        name = name,
        size = size,
        srcs = ["//test/fuzz:run_fuzz.sh"],
        args = ["$(location :%s_bin)" % name] + ["$(location %s)" % c for c in corpus],
        data = [":" + name + "_bin"] + corpus,
        tags = tags + ["fuzz"],
    )
