#include "server/openai/errors.h"

#include <nlohmann/json.hpp>

namespace ztslm::server::openai {

int http_status_for(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument:
    case StatusCode::kMalformed:
    case StatusCode::kOutOfRange: return 400;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kDeadlineExceeded: return 408;
    case StatusCode::kFailedPrecondition: return 409;
    case StatusCode::kResourceExhausted: return 429;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kCancelled:
    case StatusCode::kInternal: return 500;
  }
  return 500;
}

HttpError error_response(const Status& s, int http_override) {
  HttpError e;
  e.http_status = http_override != 0 ? http_override : http_status_for(s);
  const char* type = "invalid_request_error";
  const char* code = nullptr;
  std::string message = s.message();
  switch (e.http_status) {
    case 401: type = "authentication_error"; code = "invalid_api_key"; message = "invalid or missing credentials"; break;
    case 403: type = "permission_error"; code = "permission_denied"; break;
    case 404: code = "not_found"; break;
    case 408: code = "timeout"; break;
    case 409: code = "conflict"; break;
    case 413: code = "request_too_large"; break;
    case 429: type = "rate_limit_error"; code = "rate_limit_exceeded"; break;
    case 431: code = "headers_too_large"; break;
    case 503: type = "server_error"; code = "overloaded"; break;
    default:
      if (e.http_status >= 500) {
        type = "server_error";
        code = "internal_error";
        message = "internal error";  // SECURITY: internals stay in the audit log
      }
      break;
  }
  nlohmann::json j;
  j["error"] = {{"message", message}, {"type", type}, {"param", nullptr},
                {"code", code != nullptr ? nlohmann::json(code) : nlohmann::json(nullptr)}};
  e.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return e;
}

}  // namespace ztslm::server::openai
