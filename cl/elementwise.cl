/* cl/elementwise.cl */
