// Reference kernels work on typed arrays: Float32Array in normal use, Float64Array for gradient checks.
export type F = Float32Array | Float64Array;
export type I = Int32Array;
