//! The panic boundary and the per-thread last-error message.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::result::cyb_result;

/// Why a C ABI call failed: its code and message.
pub(crate) struct Failure {
    code: cyb_result,
    message: String,
}

impl Failure {
    pub(crate) fn null_parameter(parameter: &str) -> Self {
        Failure {
            code: cyb_result::CYB_RESULT_NULL_PARAMETER,
            message: format!("argument `{parameter}` is NULL"),
        }
    }

    pub(crate) fn callback_failed(message: String) -> Self {
        Failure {
            code: cyb_result::CYB_RESULT_CALLBACK_FAILED,
            message,
        }
    }

    pub(crate) fn invalid_argument(message: String) -> Self {
        Failure {
            code: cyb_result::CYB_RESULT_INVALID_ARGUMENT,
            message,
        }
    }
}

impl From<crate::Error> for Failure {
    fn from(error: crate::Error) -> Self {
        Failure {
            code: error.kind().into(),
            message: error.message().to_owned(),
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: String) {
    // Interior NULs cannot come from our messages, but never let one truncate or fail this.
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = message);
}

/// Runs the body of the exported function `function` inside the panic boundary: returns
/// `CYB_RESULT_OK`, or records the failure's message for this thread and returns its code.
pub(crate) fn ffi_call(
    function: &'static str,
    body: impl FnOnce() -> Result<(), Failure>,
) -> cyb_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => cyb_result::CYB_RESULT_OK,
        Ok(Err(failure)) => {
            let message = match failure.code {
                cyb_result::CYB_RESULT_NULL_PARAMETER => format!("{function}: {}", failure.message),
                _ => failure.message,
            };
            set_last_error(message);
            failure.code
        }
        Err(_) => {
            set_last_error(format!(
                "{function}: internal error (Rust panic); please report this bug"
            ));
            cyb_result::CYB_RESULT_PANIC
        }
    }
}

/// Runs an infallible body (a getter or `_free`) inside the panic boundary, giving `default` on panic.
pub(crate) fn ffi_value<T>(default: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(default)
}

/// The message of the last failed call made on this thread: what failed, naming the index and the
/// cause; never key material. Never NULL; empty if no call has failed on this thread.
///
/// The string is owned by the library and stays valid until the next failing call on this thread
/// (or the thread's exit): copy it if you keep it.
#[no_mangle]
pub extern "C" fn cyb_last_error_message() -> *const c_char {
    ffi_value(c"".as_ptr(), || {
        LAST_ERROR.with(|last| last.borrow().as_ptr())
    })
}

/// The name of a result code without its prefix (`"NOT_FOUND"` for `CYB_RESULT_NOT_FOUND`), or
/// `"UNKNOWN"` for a number that is not a code. A static string: never free it.
#[no_mangle]
pub extern "C" fn cyb_result_name(code: u32) -> *const c_char {
    ffi_value(c"UNKNOWN".as_ptr(), || {
        cyb_result::ALL
            .into_iter()
            .find(|known| *known as u32 == code)
            .map_or(c"UNKNOWN", cyb_result::name)
            .as_ptr()
    })
}

/// The library version, e.g. `"0.1.0"` (the `CYB_KMS_VERSION_*` macros give it at compile time).
/// A static string: never free it.
#[no_mangle]
pub extern "C" fn cyb_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    ffi_value(VERSION.as_ptr().cast(), || VERSION.as_ptr().cast())
}

/// The library version as one number, major * 10000 + minor * 100 + patch: what
/// `CYB_KMS_VERSION_NUMBER` was when the loaded library was built. A program compares the two to
/// detect a header / library mismatch (the C++ header does so at first use).
#[no_mangle]
pub extern "C" fn cyb_version_number() -> u32 {
    const NUMBER: u32 = super::CYB_KMS_VERSION_NUMBER;
    ffi_value(NUMBER, || NUMBER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn last_message() -> String {
        unsafe { CStr::from_ptr(cyb_last_error_message()) }
            .to_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn a_panic_becomes_the_panic_code_with_a_message() {
        let code = ffi_call("cyb_test_fn", || panic!("boom"));
        assert_eq!(code, cyb_result::CYB_RESULT_PANIC);
        assert!(last_message().starts_with("cyb_test_fn: internal error"));
        assert_eq!(ffi_value(7, || -> i32 { panic!("boom") }), 7);
    }

    #[test]
    fn failures_set_the_thread_local_message_and_success_keeps_it() {
        let code = ffi_call("cyb_x", || Err(Failure::null_parameter("out")));
        assert_eq!(code, cyb_result::CYB_RESULT_NULL_PARAMETER);
        assert_eq!(last_message(), "cyb_x: argument `out` is NULL");
        assert_eq!(ffi_call("cyb_x", || Ok(())), cyb_result::CYB_RESULT_OK);
        assert_eq!(last_message(), "cyb_x: argument `out` is NULL");
        // Another thread has its own message.
        std::thread::spawn(|| assert_eq!(last_message(), ""))
            .join()
            .unwrap();
    }

    #[test]
    fn result_names_cover_every_code_and_unknown_numbers() {
        for code in cyb_result::ALL {
            let name = unsafe { CStr::from_ptr(cyb_result_name(code as u32)) };
            assert_eq!(name, code.name());
        }
        let unknown = unsafe { CStr::from_ptr(cyb_result_name(12345)) };
        assert_eq!(unknown.to_str().unwrap(), "UNKNOWN");
    }

    #[test]
    fn version_is_the_crate_version() {
        let version = unsafe { CStr::from_ptr(cyb_version()) };
        assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn version_number_is_major_minor_patch_of_the_crate_version() {
        let parts: Vec<u32> = env!("CARGO_PKG_VERSION")
            .split(['.', '-', '+'])
            .take(3)
            .map(|part| part.parse().unwrap())
            .collect();
        assert_eq!(
            cyb_version_number(),
            parts[0] * 10000 + parts[1] * 100 + parts[2]
        );
    }
}
