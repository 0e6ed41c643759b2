//! [`setters!`](macro@crate::setters): the plain setters of a builder, written once.

/// Builder setters: each `field: Type;` (with its doc comments) becomes
/// `#[must_use] pub fn field(mut self, value: Type) -> Self`, which stores `value` in
/// `self.field` and returns the builder. For setters that do no more than that; a
/// setter that converts, validates or inserts is written out.
///
/// ```
/// struct Builder { retries: u32 }
/// impl Builder {
///     offline_proto::setters! {
///         /// How many times to try again. Default 3.
///         retries: u32;
///     }
/// }
/// assert_eq!(Builder { retries: 3 }.retries(5).retries, 5);
/// ```
#[macro_export]
macro_rules! setters {
    ($($(#[doc = $doc:expr])+ $field:ident: $ty:ty;)+) => {
        $(
            $(#[doc = $doc])+
            #[must_use]
            pub fn $field(mut self, value: $ty) -> Self {
                self.$field = value;
                self
            }
        )+
    };
}
