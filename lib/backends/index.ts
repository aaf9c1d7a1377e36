// Registers the backends by name; none is loaded until it is chosen or probed.
import { registerBackend } from '../backend.js';
import { createCpuBackend, probeCpu } from './cpu.js';
import { createCudaBackend, probeCuda } from './cuda.js';
import { referenceBackend } from './reference/index.js';

registerBackend('cpu', createCpuBackend, probeCpu);
registerBackend('cuda', createCudaBackend, probeCuda);
registerBackend('reference', () => referenceBackend, () => referenceBackend.info());
