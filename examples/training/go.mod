// Champion's example training and evaluation program (see main.go). Standard library only.
module champion.example/training

go 1.26.0
