"""Benchmark floor: a Streamlit page that only writes a title (what any page costs)."""

import streamlit as st

st.title("Kindred Map")
