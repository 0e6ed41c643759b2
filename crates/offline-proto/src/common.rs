//! Helpers both providers' wire code uses: reading `Retry-After` and `Date`, the
//! local checks of source URLs and file names, and (crate-private) the shapes their
//! encoders and decoders share.

use std::time::{Duration, SystemTime};

use http::{header, HeaderValue, StatusCode};
use serde::de::DeserializeOwned;

use crate::ValidationError;
use crate::{ApiError, Code, DecodeError, EncodeError, HttpResponse, ProviderError};

/// The `Retry-After` of an answer in whole seconds (`Retry-After: 2`), if it has one
/// that is a number. The HTTP-date form is not used by either provider and reads as
/// none. Values are kept as given (up to 2⁶⁴ − 1 s); the call machine caps what it
/// waits for ([`crate::call::MAX_RETRY_AFTER`]).
pub fn retry_after(response: &HttpResponse) -> Option<Duration> {
    response
        .headers()
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// The server's clock reading from an answer's `Date` header (IMF-fixdate, RFC 9110
/// §5.6.7: `Tue, 01 Dec 2026 22:33:19 GMT`), if it has a readable one.
pub fn server_date(response: &HttpResponse) -> Option<SystemTime> {
    let value = response.headers().get(header::DATE)?.to_str().ok()?;
    parse_http_date(value)
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let dt = time::PrimitiveDateTime::parse(value.trim(), &format).ok()?;
    Some(dt.assume_utc().into())
}

/// Characters the drives refuse in a file name.
const FORBIDDEN_NAME_CHARS: &[char] = &['\\', '/', ':', '*', '?', '"', '<', '>', '|'];

/// The longest file name accepted, in characters.
pub const FILE_NAME_MAX_CHARS: usize = 255;

/// Checks that `url` is an absolute http or https URL with a host, and returns it parsed.
///
/// # Errors
///
/// [`ValidationError::Empty`], [`ValidationError::InvalidUrl`] or
/// [`ValidationError::UnsupportedScheme`].
pub fn http_url(field: &'static str, url: &str) -> Result<url::Url, ValidationError> {
    if url.trim().is_empty() {
        return Err(ValidationError::Empty(field));
    }
    let parsed = url::Url::parse(url).map_err(|e| ValidationError::InvalidUrl {
        url: url.to_owned(),
        reason: e.to_string(),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ValidationError::UnsupportedScheme {
            url: url.to_owned(),
            scheme: parsed.scheme().to_owned(),
            allowed: "only http and https URLs can be downloaded offline",
        });
    }
    if parsed.host().is_none() {
        return Err(ValidationError::InvalidUrl {
            url: url.to_owned(),
            reason: "no host".to_owned(),
        });
    }
    Ok(parsed)
}

/// Checks a file name: not empty, at most [`FILE_NAME_MAX_CHARS`] characters, none of
/// `\ / : * ? " < > |`, not only dots or spaces.
///
/// # Errors
///
/// [`ValidationError::InvalidFileName`].
pub fn file_name(name: &str) -> Result<(), ValidationError> {
    let bad = |reason| {
        Err(ValidationError::InvalidFileName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.trim().is_empty() {
        return bad("empty");
    }
    if name.chars().count() > FILE_NAME_MAX_CHARS {
        return bad("longer than 255 characters");
    }
    if name.contains(FORBIDDEN_NAME_CHARS) || name.chars().any(char::is_control) {
        return bad("contains one of \\ / : * ? \" < > | or a control character");
    }
    if name.chars().all(|c| c == '.' || c == ' ') {
        return bad("only dots and spaces");
    }
    Ok(())
}

/// Declares a provider's `Endpoint` trait, in the module that invokes it (where
/// `EndpointId` is the provider's endpoint table): a request type with an `Output` and
/// an `ID`, that checks itself (`validate`, by default nothing), encodes itself
/// (`to_http`: `validate`, then `$encode(Self::ID, self, base, token)`) and decodes its
/// answer (`decode`: `$decode(response)`). The docs of the trait, of `Output`, and the
/// summaries of `to_http` and `decode` are the provider's.
macro_rules! endpoint_trait {
    (
        $(#[$trait_doc:meta])*
        output: $(#[$output_doc:meta])*
        to_http: $(#[$to_http_doc:meta])* $encode:path,
        decode: $(#[$decode_doc:meta])* $decode:path $(,)?
    ) => {
        $(#[$trait_doc])*
        pub trait Endpoint: serde::Serialize {
            $(#[$output_doc])*
            type Output: serde::de::DeserializeOwned;
            /// Which call this is.
            const ID: EndpointId;

            /// Checks the request locally. Called by [`to_http`](Self::to_http).
            ///
            /// # Errors
            ///
            /// A [`ValidationError`](crate::ValidationError) saying what is wrong.
            fn validate(&self) -> Result<(), $crate::ValidationError> {
                Ok(())
            }

            $(#[$to_http_doc])*
            ///
            /// # Errors
            ///
            /// [`EncodeError::Invalid`](crate::EncodeError::Invalid) when
            /// [`validate`](Self::validate) refuses the request,
            /// [`EncodeError::Header`](crate::EncodeError::Header) when the token holds
            /// characters a header cannot carry.
            fn to_http(
                &self,
                base: &$crate::BaseUrl,
                token: Option<&$crate::Secret>,
            ) -> Result<$crate::HttpRequest, $crate::EncodeError> {
                self.validate()?;
                $encode(Self::ID, self, base, token)
            }

            $(#[$decode_doc])*
            ///
            /// # Errors
            ///
            #[doc = concat!("As [`", stringify!($decode), "`].")]
            fn decode(
                response: &$crate::HttpResponse,
            ) -> Result<Self::Output, $crate::ApiError> {
                $decode(response)
            }
        }
    };
}
pub(crate) use endpoint_trait;

/// [`ValidationError::Empty`] for `field` when `empty`.
pub(crate) fn refuse_empty(field: &'static str, empty: bool) -> Result<(), ValidationError> {
    if empty {
        Err(ValidationError::Empty(field))
    } else {
        Ok(())
    }
}

/// `value` as a header value marked sensitive (a token); [`EncodeError::Header`] naming
/// `header` when it cannot be one.
pub(crate) fn sensitive_header(
    value: &str,
    header: &'static str,
) -> Result<HeaderValue, EncodeError> {
    let mut value = HeaderValue::from_str(value).map_err(|_| EncodeError::Header(header))?;
    value.set_sensitive(true);
    Ok(value)
}

/// Reads a whole JSON body as `E` (an envelope), trailing characters refused; the error
/// keeps the JSON path that failed (empty for trailing characters).
pub(crate) fn parse_envelope<'a, E: serde::Deserialize<'a>>(
    body: &'a [u8],
) -> Result<E, (String, serde_json::Error)> {
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize::<_, E>(&mut de)
        .map_err(|e| (e.path().to_string(), e.into_inner()))
        .and_then(|raw| de.end().map(|()| raw).map_err(|e| (String::new(), e)))
}

/// Decodes an answer's whole body as `T` (a struct of the one envelope field that is
/// wanted), so that the line and column in an error message point into the body the
/// error keeps, with the JSON path that failed.
pub(crate) fn decode_body<T: DeserializeOwned>(response: &HttpResponse) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(response.body());
    serde_path_to_error::deserialize(&mut de)
        .map_err(|e| DecodeError::from_json(e.inner(), Some(e.path().to_string()), response).into())
}

/// The envelope field `name` of an answer, decoded (by [`decode_body`]) as `W`, a
/// struct of that one field, which `field` takes out; [`DecodeError::missing_data`]
/// when the envelope does not have it (`present` is false).
pub(crate) fn decode_field<W: DeserializeOwned, T>(
    response: &HttpResponse,
    name: &'static str,
    present: bool,
    field: impl FnOnce(W) -> T,
) -> Result<T, ApiError> {
    if !present {
        return Err(DecodeError::missing_data(response, name).into());
    }
    decode_body(response).map(field)
}

/// [`ApiError::RateLimited`] for `error`, with the answer's `Retry-After`.
pub(crate) fn rate_limited(error: ProviderError, response: &HttpResponse) -> ApiError {
    ApiError::RateLimited {
        error,
        retry_after: retry_after(response),
    }
}

/// The error of an answer with a failure status and no readable body of the
/// provider's: for a 429 [`ApiError::RateLimited`] (code `code_429`, the start of the
/// body as its message), for any other status [`ApiError::Http`] with the raw body.
pub(crate) fn status_error(response: &HttpResponse, code_429: Code) -> ApiError {
    let status = response.status();
    if status == StatusCode::TOO_MANY_REQUESTS {
        let error = ProviderError {
            code: code_429,
            message: crate::error::preview(response.body()),
            trace_id: None,
            status,
        };
        rate_limited(error, response)
    } else {
        ApiError::Http {
            status,
            body: response.body().clone(),
        }
    }
}

/// `From<String>` and `From<&str>` for each listed type, built from the string by the
/// constructor given after `=>` (a tuple struct's name, or a `new` that takes
/// `impl Into<String>`).
macro_rules! from_string {
    ($($ty:ty => $new:path),+ $(,)?) => {$(
        impl From<String> for $ty {
            fn from(value: String) -> Self {
                $new(value)
            }
        }

        impl From<&str> for $ty {
            fn from(value: &str) -> Self {
                $new(value.to_owned())
            }
        }
    )+};
}
pub(crate) use from_string;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
        assert_eq!(parse_http_date("yesterday"), None);
    }
}
