declare module '@ronomon/reed-solomon' {
  export const MAX_K: number;
  export const MAX_M: number;
  export function create(k: number, m: number): unknown;
  export function encode(ctx: unknown, sources: number, targets: number, buffer: Buffer, bufferOffset: number,
    bufferSize: number, parity: Buffer, parityOffset: number, paritySize: number, cb: (err?: Error) => void): void;
}
declare module 'fast-crc32c' {
  export function calculate(input: Buffer | string, initial?: number): number;
}
