// Storage errors carry an S3-like code so server/ can map them one-to-one, but storage/ knows
// nothing of HTTP: no statuses here.

export type StorageErrorCode =
  | 'NoSuchBucket' | 'BucketNotEmpty' | 'BucketAlreadyExists' | 'NoSuchKey' | 'NoSuchUpload'
  | 'InvalidPart' | 'InvalidPartOrder' | 'EntityTooSmall' | 'EntityTooLarge' | 'InvalidRange'
  | 'PreconditionFailed' | 'ConditionalRequestConflict' | 'BadDigest' | 'IncompleteBody'
  | 'InsufficientWriteQuorum' | 'InsufficientReadQuorum' | 'FileCorrupt' | 'InvalidArgument'
  | 'KeyTooLongError' | 'DriveFormatMismatch' | 'NoSuchVersion' | 'TooManyParts' | 'MethodNotAllowed'
  | 'ObjectLocked' | 'InvalidWriteOffset'
  /** A read kept finding its version replaced under it (a storm of overwrites): retryable. */
  | 'Busy';

export class StorageError extends Error {
  /** Set when the answer is about a delete marker (S3 reports it in headers). */
  deleteMarker?: { versionId: string };

  constructor(readonly code: StorageErrorCode, message?: string) {
    super(message ?? code);
    this.name = 'StorageError';
  }
}

export function isStorageError(e: unknown, code?: StorageErrorCode): e is StorageError {
  return e instanceof StorageError && (code === undefined || e.code === code);
}
