import { isStorageError, StorageError } from '../storage';
// One AWS-shaped error catalogue: every error Kiln returns is named here, with the HTTP
// status and message AWS itself uses, so handlers throw a code and never format XML.

export interface ErrorSpec { status: number; message: string }

export const S3_ERRORS = {
  AccessDenied: { status: 403, message: 'Access Denied' },
  AuthorizationHeaderMalformed: { status: 400, message: 'The authorization header is malformed.' },
  AuthorizationQueryParametersError: { status: 400, message: 'Error parsing the X-Amz-Credential parameter.' },
  BadDigest: { status: 400, message: 'The Content-MD5 or checksum you specified did not match what we received.' },
  BucketAlreadyExists: { status: 409, message: 'The requested bucket name is not available.' },
  BucketAlreadyOwnedByYou: { status: 409, message: 'Your previous request to create the named bucket succeeded and you already own it.' },
  BucketNotEmpty: { status: 409, message: 'The bucket you tried to delete is not empty' },
  ConditionalRequestConflict: { status: 409, message: 'A conflicting operation occurred. Retry the request.' },
  EntityTooLarge: { status: 400, message: 'Your proposed upload exceeds the maximum allowed object size.' },
  EntityTooSmall: { status: 400, message: 'Your proposed upload is smaller than the minimum allowed object size.' },
  ExpiredToken: { status: 400, message: 'The provided token has expired.' },
  IncompleteBody: { status: 400, message: 'You did not provide the number of bytes specified by the Content-Length HTTP header.' },
  InternalError: { status: 500, message: 'We encountered an internal error. Please try again.' },
  InvalidAccessKeyId: { status: 403, message: 'The AWS Access Key Id you provided does not exist in our records.' },
  InvalidArgument: { status: 400, message: 'Invalid Argument' },
  InvalidBucketName: { status: 400, message: 'The specified bucket is not valid.' },
  InvalidBucketState: { status: 409, message: 'The request is not valid with the current state of the bucket.' },
  InvalidDigest: { status: 400, message: 'The Content-MD5 or checksum you specified is not valid.' },
  InvalidEncryptionAlgorithmError: { status: 400, message: 'The encryption request you specified is not valid.' },
  InvalidObjectState: { status: 403, message: 'The operation is not valid for the current state of the object.' },
  InvalidPart: { status: 400, message: 'One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part\'s entity tag.' },
  InvalidPartOrder: { status: 400, message: 'The list of parts was not in ascending order. Parts must be ordered by part number.' },
  InvalidPartNumber: { status: 416, message: 'The requested partnumber is not satisfiable' },
  InvalidRetentionPeriod: { status: 400, message: 'The retention period must be a positive integer.' },
  InvalidWriteOffset: { status: 400, message: 'The write offset value that you specified does not match the current object size.' },
  InvalidPolicyDocument: { status: 400, message: 'The content of the form does not meet the conditions specified in the policy document.' },
  InvalidRange: { status: 416, message: 'The requested range is not satisfiable' },
  InvalidRequest: { status: 400, message: 'Invalid Request' },
  InvalidStorageClass: { status: 400, message: 'The storage class you specified is not valid' },
  InvalidTag: { status: 400, message: 'The tag provided was not a valid tag.' },
  InvalidToken: { status: 400, message: 'The provided token is malformed or otherwise invalid.' },
  InvalidURI: { status: 400, message: 'Couldn\'t parse the specified URI.' },
  KeyTooLongError: { status: 400, message: 'Your key is too long' },
  MalformedPOSTRequest: { status: 400, message: 'The body of your POST request is not well-formed multipart/form-data.' },
  MalformedXML: { status: 400, message: 'The XML you provided was not well-formed or did not validate against our published schema.' },
  MetadataTooLarge: { status: 400, message: 'Your metadata headers exceed the maximum allowed metadata size.' },
  MethodNotAllowed: { status: 405, message: 'The specified method is not allowed against this resource.' },
  MissingContentLength: { status: 411, message: 'You must provide the Content-Length HTTP header.' },
  MissingSecurityHeader: { status: 400, message: 'Your request is missing a required header.' },
  NoSuchBucket: { status: 404, message: 'The specified bucket does not exist' },
  NoSuchKey: { status: 404, message: 'The specified key does not exist.' },
  NoSuchUpload: { status: 404, message: 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.' },
  NoSuchVersion: { status: 404, message: 'The specified version does not exist.' },
  NoSuchObjectLockConfiguration: { status: 404, message: 'The specified object does not have a ObjectLock configuration' },
  ObjectLockConfigurationNotFoundError: { status: 404, message: 'Object Lock configuration does not exist for this bucket' },
  NoSuchLifecycleConfiguration: { status: 404, message: 'The lifecycle configuration does not exist' },
  NoSuchCORSConfiguration: { status: 404, message: 'The CORS configuration does not exist' },
  AccessForbidden: { status: 403, message: 'This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource\'s CORS spec.' },
  NoSuchTagSet: { status: 404, message: 'The TagSet does not exist' },
  NotImplemented: { status: 501, message: 'A header you provided implies functionality that is not implemented.' },
  NotModified: { status: 304, message: 'Not Modified' },
  PreconditionFailed: { status: 412, message: 'At least one of the pre-conditions you specified did not hold' },
  RequestTimeTooSkewed: { status: 403, message: 'The difference between the request time and the server\'s time is too large.' },
  RequestTimeout: { status: 400, message: 'Your socket connection to the server was not read from or written to within the timeout period.' },
  ServiceUnavailable: { status: 503, message: 'Reduce your request rate.' },
  SignatureDoesNotMatch: { status: 403, message: 'The request signature we calculated does not match the signature you provided. Check your key and signing method.' },
  SlowDown: { status: 503, message: 'Please reduce your request rate.' },
  TooManyParts: { status: 400, message: 'You have attempted to upload more parts than allowed.' },
  XAmzContentSHA256Mismatch: { status: 400, message: 'The provided \'x-amz-content-sha256\' header does not match what was computed.' },
} satisfies Record<string, ErrorSpec>;

export type S3ErrorCode = keyof typeof S3_ERRORS;

export class S3Error extends Error {
  readonly code: S3ErrorCode;
  readonly status: number;
  /** Extra elements for the error XML (e.g. ArgumentName, Key, BucketName). */
  readonly extra: Record<string, string>;
  /** Extra response headers (e.g. x-amz-delete-marker). */
  readonly headers: Record<string, string>;

  constructor(code: S3ErrorCode, message?: string, extra: Record<string, string> = {}, headers: Record<string, string> = {}) {
    super(message ?? S3_ERRORS[code].message);
    this.code = code;
    this.status = S3_ERRORS[code].status;
    this.extra = extra;
    this.headers = headers;
  }
}

export function isS3Error(e: unknown): e is S3Error {
  return e instanceof S3Error;
}

// storage/ speaks its own codes; this is the one place they become S3 codes.
const STORAGE_TO_S3: Record<string, S3ErrorCode> = {
  NoSuchBucket: 'NoSuchBucket', BucketNotEmpty: 'BucketNotEmpty', BucketAlreadyExists: 'BucketAlreadyExists',
  NoSuchKey: 'NoSuchKey', NoSuchUpload: 'NoSuchUpload', InvalidPart: 'InvalidPart', InvalidPartOrder: 'InvalidPartOrder',
  EntityTooSmall: 'EntityTooSmall', EntityTooLarge: 'EntityTooLarge', InvalidRange: 'InvalidRange',
  PreconditionFailed: 'PreconditionFailed', ConditionalRequestConflict: 'ConditionalRequestConflict', BadDigest: 'BadDigest',
  IncompleteBody: 'IncompleteBody', InvalidArgument: 'InvalidArgument', KeyTooLongError: 'KeyTooLongError',
  NoSuchVersion: 'NoSuchVersion', TooManyParts: 'TooManyParts', MethodNotAllowed: 'MethodNotAllowed', ObjectLocked: 'AccessDenied', InvalidWriteOffset: 'InvalidWriteOffset',
  InsufficientWriteQuorum: 'SlowDown', InsufficientReadQuorum: 'SlowDown', FileCorrupt: 'InternalError', Busy: 'ServiceUnavailable',
};

export function toS3Error(e: unknown): S3Error {
  if (e instanceof S3Error) return e;
  if (isStorageError(e)) {
    const code = STORAGE_TO_S3[(e as StorageError).code] ?? 'InternalError';
    const msg = code === 'SlowDown' ? `Storage is degraded: ${e.message}` : S3_ERRORS[code].message;
    const se = e as StorageError;
    const headers: Record<string, string> = {};
    if (se.deleteMarker) {
      headers['x-amz-delete-marker'] = 'true';
      headers['x-amz-version-id'] = se.deleteMarker.versionId;
    }
    return new S3Error(code, e.code === 'EntityTooSmall' || e.code === 'InvalidArgument' ? e.message : msg, {}, headers);
  }
  return new S3Error('InternalError');
}

