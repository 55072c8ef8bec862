{
  "targets": [
    {
      "target_name": "kiln_native",
      "sources": ["kiln_native.c"],
      "cflags": ["-std=gnu11", "-O3"]
    }
  ]
}
