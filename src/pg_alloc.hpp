// Boost.Container over palloc. Containers built with PgAllocator allocate in
// the memory context they were given, so an ereport() longjmp that skips their
// destructors leaks nothing: the context is reset or deleted by Postgres.
// Boost's own failures are routed to ereport() by boost_throw.cpp
// (BOOST_CONTAINER_USER_DEFINED_THROW_CALLBACKS, set by the Makefile).
#pragma once

#include <iterator>  // Boost.Move forward-declares the iterator tags only

#include <boost/container/small_vector.hpp>
#include <cstddef>

#include "pg.hpp"

namespace config_guard {

template <typename T>
class PgAllocator {
 public:
  using value_type = T;

  explicit PgAllocator(MemoryContext cxt = CurrentMemoryContext) : cxt_(cxt) {}
  template <typename U>
  PgAllocator(const PgAllocator<U>& other) : cxt_(other.context()) {}  // NOLINT: rebinding

  T* allocate(std::size_t n) { return static_cast<T*>(MemoryContextAllocHuge(cxt_, n * sizeof(T))); }
  void deallocate(T* p, std::size_t) { pfree(p); }

  MemoryContext context() const { return cxt_; }
  template <typename U>
  bool operator==(const PgAllocator<U>& other) const {
    return cxt_ == other.context();
  }
  template <typename U>
  bool operator!=(const PgAllocator<U>& other) const {
    return cxt_ != other.context();
  }

 private:
  MemoryContext cxt_;
};

template <typename T, std::size_t N>
using SmallVector = boost::container::small_vector<T, N, PgAllocator<T>>;

}  // namespace config_guard
