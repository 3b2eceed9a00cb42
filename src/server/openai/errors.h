// The one mapping from Status to an HTTP status and OpenAI's error JSON (STYLE.md §4).
#pragma once

#include <string>

#include "core/status.h"

namespace ztslm::server::openai {

struct HttpError {
  int http_status = 500;
  std::string body;  // {"error":{"message","type","param","code"}}
};

// HTTP status for `s`: InvalidArgument/Malformed/OutOfRange 400, Unauthenticated 401,
// PermissionDenied 403, NotFound 404, FailedPrecondition 409, DeadlineExceeded 408,
// ResourceExhausted 429, Unavailable 503, everything else 500.
int http_status_for(const Status& s);

// The error response for `s`. `http_override` (0 = none) replaces the mapped status, e.g. 413
// for a body over the limit. Internal errors hide their message ("internal error").
HttpError error_response(const Status& s, int http_override = 0);

}  // namespace ztslm::server::openai
