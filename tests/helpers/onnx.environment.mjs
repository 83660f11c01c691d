/**
 * Jest's node environment with the host realm's typed arrays.
 *
 * Jest runs each test file in its own V8 context, so `Float32Array` in a test is not the `Float32Array` that
 * onnxruntime-node's native binding returns; onnxruntime-common's `instanceof` check then rejects every output
 * ("A float32 tensor's data must be type of function Float32Array()"). Sharing the host's constructors fixes that.
 * jest.config.js makes it every test file's environment.
 */
import process from 'node:process';
import { TestEnvironment } from 'jest-environment-node';

const SHARED = [
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array',
  'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
];

class OnnxEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    // onnxruntime's telemetry off, as inference/onnx.backend.ts's quietOnnxruntime() does in a real process: a test
    // file's process.env is Jest's copy, so that assignment would not reach onnxruntime in this worker
    if (process.env.ORT_DISABLE_TELEMETRY === undefined) process.env.ORT_DISABLE_TELEMETRY = '1';
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

export default OnnxEnvironment;
