// Requests whose timeout leaves the clock with their answer.
//
// CAF 0.17 keeps a request's timeout on the actor clock until it fires, even when the
// answer came long before, and with it a strong reference to the requester. With
// deadlines of minutes (statement_timeout), every request kept ~200 bytes (and a
// closed session kept its whole actor) alive for minutes: memory grew linearly with
// the request rate. These helpers cancel the timeout as soon as the answer or the
// error arrives, so the clock holds only the requests still in flight. Errors reach the
// handler as CAF delivers them: `as_cafdb_error` (cafdb/error.hpp) turns CAF's own
// (a request timeout, a receiver gone) into cafdb errors.
#pragma once

#include <utility>

#include <caf/detail/type_traits.hpp>
#include <caf/local_actor.hpp>
#include <caf/message_id.hpp>

namespace cafdb {

/// Cancels the timeout of the request answered by `response_id`.
inline void forget_timeout(caf::local_actor* self, caf::message_id response_id) {
  self->clock().cancel_request_timeout(self, response_id);
}

namespace detail {

// A handler with the same signature as `f` (CAF checks handlers against the expected
// answer type, so a generic lambda would not do) that forgets the timeout first.
template <class F, class... Ts>
auto forgetting(caf::local_actor* self, caf::message_id id, F f, caf::detail::type_list<Ts...>) {
  return [self, id, f = std::move(f)](Ts... xs) mutable {
    forget_timeout(self, id);
    f(std::forward<Ts>(xs)...);
  };
}

template <class F>
auto forgetting(caf::local_actor* self, caf::message_id id, F f) {
  using args = typename caf::detail::get_callable_trait<F>::arg_types;
  return forgetting(self, id, std::move(f), args{});
}

} // namespace detail

/// `handle.then(on_answer, on_error)`, with the timeout cancelled on either.
template <class Handle, class F, class G>
void then_settled(Handle handle, F on_answer, G on_error) {
  auto self = handle.self();
  auto id = handle.id();
  handle.then(detail::forgetting(self, id, std::move(on_answer)),
              detail::forgetting(self, id, std::move(on_error)));
}

/// `handle.await(on_answer, on_error)`, with the timeout cancelled on either.
template <class Handle, class F, class G>
void await_settled(Handle handle, F on_answer, G on_error) {
  auto self = handle.self();
  auto id = handle.id();
  handle.await(detail::forgetting(self, id, std::move(on_answer)),
               detail::forgetting(self, id, std::move(on_error)));
}

} // namespace cafdb
