//! Open enums: the wire's sets of known values that the provider may extend (task
//! status codes, error codes), as Rust enums whose `Unknown` variant keeps any other
//! value, so that decoding never fails on a value this crate does not know yet.
//!
//! The generated wire types (`cargo xtask codegen`, from an `enum` schema with
//! `x-enum-varnames`) declare each one with [`open_enum!`], which writes the enum, its
//! wire-value methods and its serde impls in one place.

/// Declares an open enum: the listed variants, each with its wire value, plus
/// `Unknown(..)` for any other value, which survives a round trip.
///
/// Two forms, by the wire type:
///
/// - `enum Name: i64 { Variant = 0, ... }`: a JSON number. Derives `Debug, Clone, Copy,
///   PartialEq, Eq, Hash`; `Unknown(i64)`; `code()` and `from_code()`; serialized as
///   the number.
/// - `enum Name: String { Variant = "VALUE", ... }`: a JSON string. Derives `Debug,
///   Clone, PartialEq, Eq, Hash`; `Unknown(String)`; `as_str()` and `From<&str>`;
///   serialized as the string.
///
/// The enum's attributes (its docs) and each variant's go before them, as on any enum;
/// the methods take the enum's visibility.
///
/// ```text
/// open_enum! {
///     /// A task's state.
///     pub enum TaskStatus: i64 {
///         /// `0`: downloading.
///         Running = 0,
///         /// `2`: done.
///         Succeeded = 2,
///     }
/// }
/// assert_eq!(TaskStatus::from_code(7), TaskStatus::Unknown(7));
/// ```
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: i64 {
            $($(#[$variant_meta:meta])* $variant:ident = $value:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
            /// Any other value: one this crate does not know (yet).
            Unknown(i64),
        }

        impl $name {
            /// The wire value.
            $vis fn code(self) -> i64 {
                match self {
                    $(Self::$variant => $value,)+
                    Self::Unknown(c) => c,
                }
            }

            /// The variant for a wire value.
            $vis fn from_code(code: i64) -> Self {
                match code {
                    $($value => Self::$variant,)+
                    c => Self::Unknown(c),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_i64(self.code())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <i64 as ::serde::Deserialize>::deserialize(deserializer).map(Self::from_code)
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident: String {
            $($(#[$variant_meta:meta])* $variant:ident = $value:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$variant_meta])* $variant,)+
            /// Any other value: one this crate does not know (yet).
            Unknown(String),
        }

        impl $name {
            /// The wire value.
            $vis fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $value,)+
                    Self::Unknown(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($value => Self::$variant,)+
                    other => Self::Unknown(other.to_owned()),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                <String as ::serde::Deserialize>::deserialize(deserializer)
                    .map(|s| Self::from(s.as_str()))
            }
        }
    };
}

pub(crate) use open_enum;

#[cfg(test)]
mod tests {
    open_enum! {
        /// A number-coded set.
        enum Status: i64 {
            /// `-1`: failed.
            Failed = -1,
            /// `0`: running.
            Running = 0,
        }
    }

    open_enum! {
        /// A string-coded set.
        enum Code: String {
            /// `OK`.
            Ok = "OK",
            /// `NOT_FOUND`.
            NotFound = "NOT_FOUND",
        }
    }

    #[test]
    fn numbers_round_trip_known_and_unknown() {
        assert_eq!(Status::from_code(-1), Status::Failed);
        assert_eq!(Status::Running.code(), 0);
        assert_eq!(Status::from_code(7), Status::Unknown(7));
        let read: Vec<Status> = serde_json::from_str("[-1, 0, 7]").unwrap();
        assert_eq!(read, [Status::Failed, Status::Running, Status::Unknown(7)]);
        assert_eq!(serde_json::to_string(&read).unwrap(), "[-1,0,7]");
        assert!(serde_json::from_str::<Status>("\"0\"").is_err());
    }

    #[test]
    fn strings_round_trip_known_and_unknown() {
        assert_eq!(Code::from("OK"), Code::Ok);
        assert_eq!(Code::NotFound.as_str(), "NOT_FOUND");
        let read: Vec<Code> = serde_json::from_str(r#"["OK", "NOT_FOUND", "NEW"]"#).unwrap();
        assert_eq!(
            read,
            [Code::Ok, Code::NotFound, Code::Unknown("NEW".to_owned())]
        );
        assert_eq!(read[2].as_str(), "NEW");
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            r#"["OK","NOT_FOUND","NEW"]"#
        );
        assert!(serde_json::from_str::<Code>("0").is_err());
    }
}
