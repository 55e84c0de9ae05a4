/* cl/gemm.cl */
