// NumpyIO: .npy read/write (f32, f64, i64, bool, ...). No dependencies.
