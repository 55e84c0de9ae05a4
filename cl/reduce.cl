/* cl/reduce.cl */
