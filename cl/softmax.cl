/* cl/softmax.cl */
