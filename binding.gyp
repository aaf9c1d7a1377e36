{
  "targets": [
    {
      "target_name": "retrograd",
      "sources": [
        "native/core/storage.cc",
        "native/core/thread_pool.cc",
        "native/core/queue.cc",
        "native/cpu/simd.cc",
        "native/cpu/gemm.cc",
        "native/cpu/linear.cc",
        "native/cpu/activations.cc",
        "native/cpu/losses.cc",
        "native/cpu/optim.cc",
        "native/cpu/tensor_ops.cc",
        "native/cpu/dropout.cc",
        "native/cpu/device.cc",
        "native/cpu/conv.cc",
        "native/cpu/sequence.cc",
        "native/cpu/recurrent.cc",
        "native/cpu/attention.cc",
        "native/cpu/ops.cc",
        "native/addon/kernel_table.cc",
        "native/addon/addon.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_EXPERIMENTAL", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-O3", "-fno-math-errno", "-fno-trapping-math", "-fexceptions", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-psabi"],
      "ldflags": ["-pthread"],
      "conditions": [
        ["OS=='mac'", {
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
            "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
            "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
            "MACOSX_DEPLOYMENT_TARGET": "11.0",
            "OTHER_CPLUSPLUSFLAGS": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fvisibility-inlines-hidden"]
          }
        }],
        ["OS=='win'", {
          "msbuild_toolset": "ClangCL",
          "defines": ["NOMINMAX", "_HAS_EXCEPTIONS=1"],
          "msvs_settings": {
            "VCCLCompilerTool": { "ExceptionHandling": 1, "AdditionalOptions": ["/std:c++17", "/O2", "/EHsc"] }
          }
        }]
      ]
    }
  ]
}
