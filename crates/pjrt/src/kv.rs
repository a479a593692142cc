//! The key-value store a PJRT client may use to exchange information with the other processes of
//! one job (`PJRT_Client_Create_Args.kv_get_callback` / `kv_try_get_callback` / `kv_put_callback`).
//!
//! A multi-process plugin (CUDA with `num_nodes > 1`) puts its local topology under keys of its
//! own, gets every other process's, and builds the global device list from them; NCCL's unique id
//! travels the same way. netspec gives the plugin a [`KeyValueStore`] through
//! [`crate::ClientOptions::kv_store`]; the C callbacks here ([`get_trampoline`],
//! [`try_get_trampoline`], [`put_trampoline`]) turn each call into a call of the store, its result
//! into the plugin's value or `PJRT_Error` (made with the plugin's `callback_error`), and never let a
//! panic cross into C.
//!
//! [`MemoryStore`] is an in-process store (one process: tests, and the shape of the coordinator's
//! table). A store shared by several processes (a small TCP service run by process 0, as PyTorch's
//! TCPStore or JAX's coordination service) implements the same trait; see ARCHITECTURE.md,
//! "Several processes".

use std::collections::HashMap;
use std::ffi::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::ffi::*;

/// Why a key-value operation failed; each maps to a `PJRT_Error_Code` for the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    /// `try_get` of a key nobody has put (`NOT_FOUND`).
    NotFound,
    /// `get` waited its whole timeout and the key did not appear (`DEADLINE_EXCEEDED`).
    Timeout,
    /// The key is not valid UTF-8 (`INVALID_ARGUMENT`).
    BadKey,
    /// The store failed (a lost connection to the coordinator, …) (`UNAVAILABLE`).
    Failed(String),
}

impl KvError {
    fn code(&self) -> PJRT_Error_Code {
        match self {
            KvError::NotFound => PJRT_Error_Code_NOT_FOUND,
            KvError::Timeout => PJRT_Error_Code_DEADLINE_EXCEEDED,
            KvError::BadKey => PJRT_Error_Code_INVALID_ARGUMENT,
            KvError::Failed(_) => PJRT_Error_Code_UNAVAILABLE,
        }
    }
}

impl std::fmt::Display for KvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvError::NotFound => write!(f, "key not found"),
            KvError::Timeout => write!(f, "timed out waiting for the key"),
            KvError::BadKey => write!(f, "the key is not UTF-8"),
            KvError::Failed(m) => write!(f, "key-value store: {m}"),
        }
    }
}

/// A key-value store shared by the processes of one job. The plugin may call it from any thread,
/// several calls at once.
pub trait KeyValueStore: Send + Sync {
    /// The value of `key`, waiting up to `timeout` for some process to put it.
    fn get(&self, key: &str, timeout: Duration) -> Result<Vec<u8>, KvError>;
    /// The value of `key` if it is there now, else [`KvError::NotFound`].
    fn try_get(&self, key: &str) -> Result<Vec<u8>, KvError>;
    /// Sets `key` (a later put of the same key replaces the value).
    fn put(&self, key: &str, value: &[u8]) -> Result<(), KvError>;
}

/// A store for [`crate::ClientOptions::kv_store`]: shared, compared by identity.
#[derive(Clone)]
pub struct KvStore(pub Arc<dyn KeyValueStore>);

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KvStore({:p})", Arc::as_ptr(&self.0).cast::<()>())
    }
}

impl PartialEq for KvStore {
    fn eq(&self, other: &KvStore) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// An in-process [`KeyValueStore`]: a map behind a mutex, `get` waiting on a condition variable.
#[derive(Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<String, Vec<u8>>>,
    changed: Condvar,
}

impl MemoryStore {
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// The keys put so far, sorted.
    pub fn keys(&self) -> Vec<String> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut k: Vec<String> = map.keys().cloned().collect();
        k.sort();
        k
    }
}

impl KeyValueStore for MemoryStore {
    fn get(&self, key: &str, timeout: Duration) -> Result<Vec<u8>, KvError> {
        let deadline = Instant::now() + timeout;
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(v) = map.get(key) {
                return Ok(v.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(KvError::Timeout);
            }
            map = self
                .changed
                .wait_timeout(map, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn try_get(&self, key: &str) -> Result<Vec<u8>, KvError> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).cloned().ok_or(KvError::NotFound)
    }

    fn put(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.insert(key.to_string(), value.to_vec());
        self.changed.notify_all();
        Ok(())
    }
}

/// The store as the callbacks' `user_arg`: a thin pointer to a boxed `Arc`, kept alive by the
/// client that was created with it (and by whoever else holds the `Arc`).
#[doc(hidden)]
pub struct Callbacks {
    store: Box<Arc<dyn KeyValueStore>>,
}

impl Callbacks {
    pub fn new(store: Arc<dyn KeyValueStore>) -> Callbacks {
        Callbacks {
            store: Box::new(store),
        }
    }

    /// The `user_arg` of all three callbacks; valid while `self` lives.
    pub fn user_arg(&self) -> *mut c_void {
        let p: *const Arc<dyn KeyValueStore> = &*self.store;
        p as *mut c_void
    }

    /// Sets the three callbacks and their argument in client-creation arguments.
    pub fn install(&self, a: &mut PJRT_Client_Create_Args) {
        a.kv_get_callback = Some(get_trampoline);
        a.kv_get_user_arg = self.user_arg();
        a.kv_try_get_callback = Some(try_get_trampoline);
        a.kv_try_get_user_arg = self.user_arg();
        a.kv_put_callback = Some(put_trampoline);
        a.kv_put_user_arg = self.user_arg();
    }
}

/// Bytes of the length prefix in front of a value handed to the plugin (the deleter gets only
/// the pointer).
const PREFIX: usize = std::mem::size_of::<u64>();

/// Copies `v` into memory that [`free_value`] releases; returns the value's pointer and length.
fn leak_value(v: &[u8]) -> (*mut c_char, usize) {
    let mut buf = Vec::with_capacity(PREFIX + v.len());
    buf.extend_from_slice(&(v.len() as u64).to_ne_bytes());
    buf.extend_from_slice(v);
    let base = Box::into_raw(buf.into_boxed_slice()).cast::<u8>();
    // SAFETY: the allocation is PREFIX + len bytes long.
    (unsafe { base.add(PREFIX) }.cast::<c_char>(), v.len())
}

/// The value deleter given to the plugin with every value a get returns.
///
/// # Safety
/// `value` must be null or a pointer returned by [`leak_value`], not freed before.
pub unsafe extern "C" fn free_value(value: *mut c_char) {
    if value.is_null() {
        return;
    }
    // SAFETY: (caller) `value` is PREFIX bytes into a live allocation from leak_value, whose first
    // PREFIX bytes hold the value's length.
    unsafe {
        let base = value.cast::<u8>().sub(PREFIX);
        let len = std::ptr::read_unaligned(base.cast::<u64>()) as usize;
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
            base,
            PREFIX + len,
        )));
    }
}

/// The key of a callback call as text.
///
/// # Safety
/// `key` must point to `size` readable bytes (or be null with size 0).
unsafe fn key_of<'a>(key: *const c_char, size: usize) -> Result<&'a str, KvError> {
    if size == 0 {
        return Ok("");
    }
    if key.is_null() {
        return Err(KvError::BadKey);
    }
    // SAFETY: (caller) `size` readable bytes.
    let bytes = unsafe { std::slice::from_raw_parts(key.cast::<u8>(), size) };
    std::str::from_utf8(bytes).map_err(|_| KvError::BadKey)
}

/// The plugin's error for `e`, made with its `callback_error` (null if it gave none).
///
/// # Safety
/// `make` must be null or point to a valid `PJRT_CallbackError`.
unsafe fn error(
    make: *mut PJRT_CallbackError,
    code: PJRT_Error_Code,
    msg: &str,
) -> *mut PJRT_Error {
    // SAFETY: (caller) null or a valid pointer.
    match unsafe { make.as_ref() }.copied().flatten() {
        // SAFETY: the plugin's function, called as its header says; it copies the message.
        Some(f) => unsafe { f(code, msg.as_ptr().cast::<c_char>(), msg.len()) },
        None => std::ptr::null_mut(),
    }
}

/// Runs a store call, turning a panic into an `INTERNAL` error message.
fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, KvError>,
) -> Result<T, (PJRT_Error_Code, String)> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err((e.code(), format!("{what}: {e}"))),
        Err(_) => Err((
            PJRT_Error_Code_INTERNAL,
            format!("{what}: the key-value store panicked"),
        )),
    }
}

/// Recovers the store from a callback's `user_arg`.
///
/// # Safety
/// `user_arg` must be [`Callbacks::user_arg`] of live `Callbacks`.
unsafe fn store<'a>(user_arg: *mut c_void) -> &'a dyn KeyValueStore {
    // SAFETY: (caller) it points to the boxed Arc.
    unsafe { &**user_arg.cast::<Arc<dyn KeyValueStore>>() }
}

/// `PJRT_KeyValueGetCallback`: blocks until the key is there or `timeout_in_ms` passes.
///
/// # Safety
/// Called by a plugin with valid arguments whose `user_arg` is [`Callbacks::user_arg`].
pub unsafe extern "C" fn get_trampoline(
    args: *mut PJRT_KeyValueGetCallback_Args,
) -> *mut PJRT_Error {
    // SAFETY: (caller) valid arguments.
    let a = unsafe { &mut *args };
    let make = a.callback_error;
    // SAFETY: (caller) key and user_arg valid.
    let r = unsafe { key_of(a.key, a.key_size) }.map_err(|e| (e.code(), format!("kv get: {e}")));
    let r = r.and_then(|key| {
        let timeout = Duration::from_millis(a.timeout_in_ms.max(0) as u64);
        // SAFETY: (caller) user_arg is the store's.
        let s = unsafe { store(a.user_arg) };
        guarded(&format!("kv get {key:?}"), || s.get(key, timeout))
    });
    match r {
        Ok(v) => {
            (a.value, a.value_size) = leak_value(&v);
            a.value_deleter_callback = Some(free_value);
            std::ptr::null_mut()
        }
        // SAFETY: (caller) callback_error as the plugin gave it.
        Err((code, msg)) => unsafe { error(make, code, &msg) },
    }
}

/// `PJRT_KeyValueTryGetCallback`: the value if the key is there now, else `NOT_FOUND`.
///
/// # Safety
/// As [`get_trampoline`].
pub unsafe extern "C" fn try_get_trampoline(
    args: *mut PJRT_KeyValueTryGetCallback_Args,
) -> *mut PJRT_Error {
    // SAFETY: (caller) valid arguments.
    let a = unsafe { &mut *args };
    let make = a.callback_error;
    // SAFETY: (caller) key valid.
    let r =
        unsafe { key_of(a.key, a.key_size) }.map_err(|e| (e.code(), format!("kv try_get: {e}")));
    let r = r.and_then(|key| {
        // SAFETY: (caller) user_arg is the store's.
        let s = unsafe { store(a.user_arg) };
        guarded(&format!("kv try_get {key:?}"), || s.try_get(key))
    });
    match r {
        Ok(v) => {
            (a.value, a.value_size) = leak_value(&v);
            a.value_deleter_callback = Some(free_value);
            std::ptr::null_mut()
        }
        // SAFETY: (caller) callback_error as the plugin gave it.
        Err((code, msg)) => unsafe { error(make, code, &msg) },
    }
}

/// `PJRT_KeyValuePutCallback`: sets the key (the value is copied during the call).
///
/// # Safety
/// As [`get_trampoline`].
pub unsafe extern "C" fn put_trampoline(
    args: *mut PJRT_KeyValuePutCallback_Args,
) -> *mut PJRT_Error {
    // SAFETY: (caller) valid arguments.
    let a = unsafe { &mut *args };
    let make = a.callback_error;
    // SAFETY: (caller) key valid.
    let r = unsafe { key_of(a.key, a.key_size) }.map_err(|e| (e.code(), format!("kv put: {e}")));
    let r = r.and_then(|key| {
        let value: &[u8] = if a.value_size == 0 || a.value.is_null() {
            &[]
        } else {
            // SAFETY: (caller) value_size readable bytes, alive during the call.
            unsafe { std::slice::from_raw_parts(a.value.cast::<u8>(), a.value_size) }
        };
        // SAFETY: (caller) user_arg is the store's.
        let s = unsafe { store(a.user_arg) };
        guarded(&format!("kv put {key:?}"), || s.put(key, value))
    });
    match r {
        Ok(()) => std::ptr::null_mut(),
        // SAFETY: (caller) callback_error as the plugin gave it.
        Err((code, msg)) => unsafe { error(make, code, &msg) },
    }
}
